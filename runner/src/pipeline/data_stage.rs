//! `stage-data`: decode, resize and pack the raw data set into `data/{train,test}/` shards.
//!
//! The raw data set is a local path (`/path`, `file:///path`: a volume) or an `s3://` object or
//! prefix, which is downloaded to a scratch folder first (`NAS_SCRATCH`, else the temporary
//! folder) with the same S3 settings as the artifacts.
use std::path::{Path, PathBuf};

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::spec::DatasetFormat;
use nas_api::uri::StoreUri;

use super::{ErrorKind, Search, StageError, StageResult};
use crate::data::{self, DataError, Normalization, Split, StageConfig};
use crate::store::{self, ObjectStore};

const SPLITS: [(Split, &str); 2] = [(Split::Train, "train"), (Split::Test, "test")];

/// Seconds the staging took, summed over the splits (`None` when no index records them).
pub fn seconds(search: &Search) -> Result<Option<f64>, StageError> {
    let mut total = None;
    for (_, name) in SPLITS {
        let key = nas_api::layout::key::data_index(name);
        if let Some(bytes) = search.store.get_opt(&key)? {
            let index: data::ShardIndex =
                serde_json::from_slice(&bytes).map_err(|e| search.corrupt(&key, e))?;
            if let Some(s) = index.seconds {
                total = Some(total.unwrap_or(0.0) + s);
            }
        }
    }
    Ok(total)
}

/// Stages both splits; a split whose `_SUCCESS` exists is left alone.
pub fn run(search: &Search) -> StageResult {
    search.ensure_spec()?;
    if SPLITS
        .iter()
        .map(|(_, name)| search.done(&nas_api::layout::key::data_success(name)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .all(|d| d)
    {
        return Ok(super::skipped(Stage::StageData, None, "staging"));
    }
    let location = local_source(search)?;
    let config = stage_config(search);
    let mut summary = TerminationSummary::new(Stage::StageData, None, Outcome::Succeeded, "");
    let mut parts = Vec::new();
    for (split, name) in SPLITS {
        let prefix = nas_api::layout::key::data_split(name);
        let report = data::stage_data(&location, split, search.store.as_ref(), &prefix, &config)
            .map_err(|e| data_error(e, &search.spec().dataset.source))?;
        parts.push(format!(
            "{name}: {} images in {} shards ({} corrupt skipped)",
            report.images, report.shards, report.bad
        ));
        summary
            .values
            .insert(format!("{name}Images"), report.images as f64);
        summary
            .values
            .insert(format!("{name}Corrupt"), report.bad as f64);
        summary.artifacts.push(format!("{prefix}/"));
        tracing::info!(
            split = name,
            images = report.images,
            bad = report.bad,
            shards = report.shards,
            skipped = report.skipped,
            "staged"
        );
    }
    summary.message = parts.join("; ");
    Ok(summary)
}

/// Errors of the data layer, in the contract's terms.
pub(crate) fn data_error(e: DataError, source: &str) -> StageError {
    match e {
        DataError::TooManyBad { .. } => {
            StageError::undoable(format!("spec.dataset.source {source}: {e}"))
        }
        DataError::Store(s) => StageError::from(s),
        DataError::Checksum { .. } | DataError::Tensor(_) | DataError::Internal(_) => {
            StageError::caused_by(ErrorKind::Transient, "", e)
        }
        // Only what the user's data or its location causes is a configuration error: a full
        // disk, a reset connection or an interrupted read is worth a retry.
        DataError::Io { source: ref io, .. } if !io_is_config(io.kind()) => StageError::caused_by(
            ErrorKind::Transient,
            format!("spec.dataset.source {source}"),
            e,
        ),
        other => StageError::config(format!("spec.dataset.source {source}: {other}")),
    }
}

/// IO errors a retry cannot fix: the data's own fault or its permissions.
fn io_is_config(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::NotFound
            | K::PermissionDenied
            | K::InvalidData
            | K::InvalidInput
            | K::UnexpectedEof
            | K::IsADirectory
            | K::NotADirectory
            | K::InvalidFilename
    )
}

/// How the split is packed: ImageNet-style folders are resized (short side `resolution * 8/7`,
/// test split centre-cropped to `resolution`); CIFAR-10 and Fashion-MNIST keep their size unless
/// another resolution is asked for.
fn stage_config(search: &Search) -> StageConfig {
    let d = &search.spec().dataset;
    let native = match d.format {
        DatasetFormat::Cifar10 => Some(32),
        DatasetFormat::FashionMnist => Some(28),
        DatasetFormat::ImageFolder | DatasetFormat::WebDataset => None,
    };
    let mut config = StageConfig {
        progress: search.progress,
        normalization: Some(normalization_of(d.format)),
        ..StageConfig::default()
    };
    match native {
        Some(n) if n == d.resolution => {}
        Some(_) => {
            config.short_side = Some(d.resolution);
            config.center_crop = Some(d.resolution);
        }
        None => {
            config = StageConfig {
                short_side: Some(d.resolution * 8 / 7),
                center_crop: Some(d.resolution),
                progress: search.progress,
                normalization: Some(normalization_of(d.format)),
                ..StageConfig::imagenet()
            };
        }
    }
    config
}

/// The statistics the declared data set is normalised with (the folder's name plays no part).
fn normalization_of(format: DatasetFormat) -> Normalization {
    match format {
        DatasetFormat::Cifar10 => Normalization::cifar10(),
        DatasetFormat::FashionMnist => Normalization::fashion_mnist(),
        DatasetFormat::ImageFolder | DatasetFormat::WebDataset => Normalization::imagenet(),
    }
}

/// A local path to read the raw data set from, downloading an `s3://` source first.
fn local_source(search: &Search) -> Result<String, StageError> {
    let source = &search.spec().dataset.source;
    let uri = StoreUri::parse(source)
        .map_err(|e| StageError::config(format!("spec.dataset.source: {e}")))?;
    match uri {
        StoreUri::File { path } => Ok(path.to_string_lossy().into_owned()),
        StoreUri::S3 { bucket, key } => {
            let config = super::s3_config(&search.resolved, &bucket)?;
            let store = store::open_store(
                &StoreUri::S3 {
                    bucket,
                    key: String::new(),
                },
                Some(&config),
            )?;
            let scratch = std::env::var_os("NAS_SCRATCH")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(format!("nas-source-{}", search.resolved.uid));
            // Keep the source's own name (`.../fashion-mnist`) for the logs and errors.
            let key = key.trim_end_matches('/');
            let name = key
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("data");
            download(store.as_ref(), key, &scratch.join(name))
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| match e {
                    // Nothing at the source: retrying will not make it appear.
                    store::StoreError::NotFound { .. } => {
                        StageError::config(format!("spec.dataset.source {source}: {e}"))
                    }
                    other => StageError::from(other).context("spec.dataset.source"),
                })
        }
    }
}

/// Downloads the object `key` (returns its local file) or every object under `key/` (returns
/// the folder). Files already downloaded whole (downloads are atomic) are kept.
fn download(store: &dyn ObjectStore, key: &str, into: &Path) -> Result<PathBuf, store::StoreError> {
    std::fs::create_dir_all(into).map_err(|e| store::StoreError::Io {
        context: into.display().to_string(),
        source: e,
    })?;
    // A prefix first: objects under `key/` (listing also never asks about a "folder" key,
    // which some S3-compatible servers answer with an error rather than 404).
    let prefix = if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    };
    let keys = store.list(&prefix)?;
    if keys.is_empty() {
        if key.is_empty() || !store.exists(key)? {
            return Err(store::StoreError::NotFound {
                location: store.describe(),
                key: key.to_string(),
            });
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        let path = into.join(name);
        if !path.is_file() {
            store.get_to_file(key, &path)?;
        }
        return Ok(path);
    }
    for k in keys {
        let rel = &k[prefix.len()..];
        let path = into.join(rel);
        if path.is_file() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| store::StoreError::Io {
                context: parent.display().to_string(),
                source: e,
            })?;
        }
        store.get_to_file(&k, &path)?;
    }
    Ok(into.to_path_buf())
}

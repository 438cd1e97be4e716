//! `stage-data` as a library function: read a raw split, decode and resize in parallel, pack
//! into fixed-size shards written through an [`ObjectStore`], then `index.json`, then `_SUCCESS`.
//!
//! Memory stays bounded: a reader thread streams records in chunks through a channel of depth
//! two; each chunk is decoded on the rayon pool; at most one shard is buffered before its `put`.
//! Corrupt images are logged with their key and skipped; above `max_bad_fraction` of the split
//! the stage fails with [`DataError::TooManyBad`] (exit code 3) and writes no `_SUCCESS`.
use super::image::{decode_jpeg, Image};
use super::records::{ClassRef, Payload, RawRecord};
use super::shards::{join_key, shard_name, ShardIndex, ShardWriter, INDEX_VERSION};
use super::source::DataSource;
use super::{DataError, Normalization, Split};
use crate::progress::Progress;
use crate::store::ObjectStore;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::time::Instant;

/// How to stage one split.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageConfig {
    /// Resize so the shorter side is this (aspect kept); `None` keeps decoded sizes.
    pub short_side: Option<u32>,
    /// Centre crop to a square of this side, for the test split only (training crops randomly).
    pub center_crop: Option<u32>,
    pub images_per_shard: usize,
    /// Largest tolerated fraction of corrupt images, in [0, 1].
    pub max_bad_fraction: f64,
    /// Records decoded in parallel per step.
    pub chunk: usize,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Memory the open shard writers of the training split may hold. Class folders and
    /// CIFAR-10's tar list their images class by class; spreading consecutive images over
    /// several shards at random lets the loader's bounded shuffle mix the classes.
    pub scatter_bytes: usize,
    /// The normalisation written into the index, when the caller knows the data set (the
    /// pipeline: `spec.dataset.format`); `None` takes the detected format's.
    pub normalization: Option<Normalization>,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            short_side: None,
            center_crop: None,
            images_per_shard: 4096,
            max_bad_fraction: 0.001,
            chunk: 512,
            progress: true,
            scatter_bytes: 1 << 30,
            normalization: None,
        }
    }
}

impl StageConfig {
    /// ImageNet-style: short side 256, centre crop 224 for evaluation.
    pub fn imagenet() -> Self {
        StageConfig {
            short_side: Some(256),
            center_crop: Some(224),
            images_per_shard: 1024,
            ..Default::default()
        }
    }
}

/// Seed of the scatter of training images over shards: staging is reproducible.
const SCATTER_SEED: u64 = 0x5CA7_7E25;

/// How many shard writers the training split keeps open: as many as `scatter_bytes` holds
/// (at most 64); one for the other splits, which keep the source's order.
fn scatter_width(config: &StageConfig, split: Split, image_bytes: usize) -> usize {
    if split != Split::Train {
        return 1;
    }
    let shard_bytes = config.images_per_shard.saturating_mul(image_bytes.max(1));
    (config.scatter_bytes / shard_bytes.max(1)).clamp(1, 64)
}

/// What a staging run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageReport {
    pub split: Split,
    pub prefix: String,
    pub images: usize,
    pub bad: usize,
    pub shards: usize,
    pub classes: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    /// True when `_SUCCESS` already existed and nothing was done.
    pub skipped: bool,
}

fn validate(config: &StageConfig) -> Result<(), DataError> {
    if config.images_per_shard == 0 || config.chunk == 0 {
        return Err(DataError::Invalid(
            "stage: images_per_shard and chunk must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&config.max_bad_fraction) {
        return Err(DataError::Invalid(format!(
            "stage: max_bad_fraction {} is outside [0, 1]",
            config.max_bad_fraction
        )));
    }
    Ok(())
}

/// Stages `split` of the data set at `location` under `prefix` of `store`. Idempotent: a prefix
/// holding `_SUCCESS` is left as it is.
pub fn stage_data(
    location: &str,
    split: Split,
    store: &dyn ObjectStore,
    prefix: &str,
    config: &StageConfig,
) -> Result<StageReport, DataError> {
    validate(config)?;
    let started = Instant::now();
    if store.exists(&join_key(prefix, nas_api::layout::SUCCESS_MARKER))? {
        let index = ShardIndex::load(store, prefix)?;
        return Ok(StageReport {
            split,
            prefix: prefix.to_string(),
            images: index.total,
            bad: index.bad,
            shards: index.shards.len(),
            classes: index.classes.len(),
            seconds: 0.0,
            images_per_second: 0.0,
            skipped: true,
        });
    }
    let source = DataSource::open(location)?;
    let channels = source.channels()?;
    let normalization = match &config.normalization {
        Some(n) => n.clone(),
        None => source.normalization()?,
    };
    let classes = source.classes(split)?;
    if classes.is_empty() {
        return Err(DataError::Invalid(format!(
            "{location}: split {split} holds no classes"
        )));
    }
    let label_of = |class: &ClassRef| -> Result<u32, DataError> {
        match class {
            ClassRef::Name(n) => classes.binary_search(n).map(|i| i as u32).map_err(|_| {
                DataError::Invalid(format!(
                    "{location}: class '{n}' appeared during the pass only"
                ))
            }),
            ClassRef::Index(i) if (*i as usize) < classes.len() => Ok(*i),
            ClassRef::Index(i) => Err(DataError::Invalid(format!(
                "{location}: label {i} outside the {} classes",
                classes.len()
            ))),
        }
    };
    let crop = if split == Split::Test {
        config.center_crop
    } else {
        None
    };
    let prepare = |record: &RawRecord| -> Result<Image, DataError> {
        let mut image = match &record.payload {
            Payload::Jpeg(bytes) => decode_jpeg(bytes, channels, &record.key)?,
            Payload::Pixels(image) => image.clone(),
        };
        if let Some(s) = config.short_side {
            image = image.resize_short_side(s)?;
        }
        if let Some(c) = crop {
            image = image.center_crop(c);
        }
        Ok(image)
    };

    let mut counts = vec![0usize; classes.len()];
    let mut bad = 0usize;
    let mut seen = 0usize;
    let mut shape: Option<Option<[u32; 3]>> = None;
    // One writer until the first image tells the shard size; then the scatter width.
    let mut writers: Vec<ShardWriter> = Vec::new();
    let mut scatter = ChaCha8Rng::seed_from_u64(SCATTER_SEED);
    let mut shards = Vec::new();
    let mut progress = Progress::counter(
        format!("stage-data {split}"),
        None,
        "images",
        config.progress,
    );
    let flush =
        |writer: &mut ShardWriter, shards: &mut Vec<super::ShardInfo>| -> Result<(), DataError> {
            let (bytes, info) = writer.finish(shard_name(shards.len()));
            store.put(&join_key(prefix, &info.name), &bytes)?;
            shards.push(info);
            Ok(())
        };

    let summary = std::thread::scope(|scope| -> Result<super::records::VisitSummary, DataError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RawRecord>>(2);
        let reader = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(config.chunk);
            let summary = source.visit(split, &mut |record| {
                chunk.push(record);
                if chunk.len() == config.chunk {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(config.chunk));
                    tx.send(full)
                        .map_err(|_| DataError::Internal("stage: writer stopped".into()))?;
                }
                Ok(())
            });
            if summary.is_ok() && !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            summary
        });
        let mut failure = None;
        for chunk in rx.iter() {
            let prepared: Vec<Result<Image, DataError>> = chunk.par_iter().map(&prepare).collect();
            for (record, image) in chunk.iter().zip(prepared) {
                seen += 1;
                let image = match image {
                    Ok(image) => image,
                    Err(DataError::Decode { key, detail }) => {
                        bad += 1;
                        tracing::warn!(%key, %detail, "skipping corrupt image");
                        continue;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                let label = match label_of(&record.class) {
                    Ok(l) => l,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                let this = [image.channels as u32, image.height, image.width];
                shape = Some(match shape {
                    None => Some(this),
                    Some(Some(s)) if s == this => Some(s),
                    Some(_) => None,
                });
                counts[label as usize] += 1;
                if writers.is_empty() {
                    let width = scatter_width(config, split, image.data.len());
                    writers.resize_with(width, ShardWriter::default);
                }
                let pick = scatter.random_range(0..writers.len());
                let writer = &mut writers[pick];
                if let Err(e) = writer.push(label, &image) {
                    failure = Some(e);
                    break;
                }
                if writer.len() == config.images_per_shard {
                    if let Err(e) = flush(writer, &mut shards) {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if failure.is_some() {
                break;
            }
            progress.advance(chunk.len() as u64);
        }
        drop(rx);
        let summary = reader
            .join()
            .map_err(|_| DataError::Internal("stage: reader thread panicked".into()))?;
        match failure {
            Some(e) => Err(e),
            None => summary,
        }
    })?;
    for writer in writers.iter_mut().filter(|w| !w.is_empty()) {
        flush(writer, &mut shards)?;
    }

    if let Some(folders) = &summary.class_folders {
        if let Some(empty) = folders.iter().find(|f| {
            classes
                .iter()
                .position(|c| c == *f)
                .is_none_or(|i| counts[i] == 0)
        }) {
            return Err(DataError::EmptyClass {
                location: location.to_string(),
                split: split.to_string(),
                class: empty.clone(),
            });
        }
    }
    if let Some(i) = counts.iter().position(|&c| c == 0) {
        if bad == 0 {
            return Err(DataError::EmptyClass {
                location: location.to_string(),
                split: split.to_string(),
                class: classes[i].clone(),
            });
        }
    }
    if seen == 0 {
        return Err(DataError::Invalid(format!(
            "{location}: split {split} holds no images"
        )));
    }
    if bad as f64 > config.max_bad_fraction * seen as f64 {
        return Err(DataError::TooManyBad {
            bad,
            total: seen,
            max_fraction: config.max_bad_fraction,
        });
    }
    let total = seen - bad;
    let index = ShardIndex {
        version: INDEX_VERSION,
        split: split.to_string(),
        source: location.to_string(),
        classes: classes.clone(),
        counts,
        total,
        bad,
        channels,
        short_side: config.short_side,
        center_crop_side: crop,
        shape: shape.flatten(),
        images_per_shard: config.images_per_shard,
        normalization,
        shards: shards.clone(),
        seconds: Some(started.elapsed().as_secs_f64()),
        prefix: String::new(),
    };
    let json = serde_json::to_vec_pretty(&index)
        .map_err(|e| DataError::Invalid(format!("index.json: {e}")))?;
    store.put(&join_key(prefix, "index.json"), &json)?;
    store.put(
        &join_key(prefix, nas_api::layout::SUCCESS_MARKER),
        format!("{{\"images\":{total},\"shards\":{}}}\n", shards.len()).as_bytes(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    progress.note(&format!(
        "done, {total} images ({bad} corrupt) in {} shards, {seconds:.1} s",
        shards.len()
    ));
    Ok(StageReport {
        split,
        prefix: prefix.to_string(),
        images: total,
        bad,
        shards: shards.len(),
        classes: classes.len(),
        seconds,
        images_per_second: seen as f64 / seconds.max(1e-9),
        skipped: false,
    })
}

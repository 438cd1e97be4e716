//! `nas-runner local SEARCH.yaml [--out DIR]`: every stage of a search in one process, against a
//! local folder, for users without a cluster.
//!
//! Reads the very YAML a user would `kubectl apply`, validates it with the CRD's rules (an error
//! names the field), and runs the same pipeline functions the cluster's stage pods run, in
//! order: every score shard, every finalist. The artifact layout under `DIR` is the one of
//! DESIGN.md; every unit leaves a `_SUCCESS` marker, so re-running an interrupted search
//! resumes where it stopped.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nas_api::contract::TerminationSummary;
use nas_api::records::Summary;
use nas_api::resolved::{ResolveError, ResolvedSpec};

use nas_api::spec::DatasetFormat;

use crate::data::{DataSource, Format};
use crate::pipeline::analysis::GroundTruth;
use crate::pipeline::report::ReportOptions;
use crate::pipeline::{self, Search, StageError};
use crate::store::{LocalStore, ObjectStore};

/// Arguments of `nas-runner local`.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// A NASSearch YAML file (the same you would `kubectl apply`).
    pub search: PathBuf,
    /// Folder for the artifacts (default `runs/<name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Write to the S3 store the YAML's `artifacts` names (credentials from the environment)
    /// instead of a local folder.
    #[arg(long, conflicts_with = "out")]
    pub s3: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Run on this data set instead of the YAML's `spec.dataset`: a CIFAR-10 folder
    /// (`train.tar.gz`, `test.tar.gz`), Fashion-MNIST IDX files, or an image folder with one
    /// folder per split. The format is detected; CIFAR-10 and Fashion-MNIST keep their native
    /// resolution.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub ground_truth: GroundTruthArgs,
}

/// A benchmark table the report measures the candidates against (ground-truth mode).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GroundTruthArgs {
    /// NB201-style table `index,arch,<accuracy columns>` such as NAS-Bench-201's accuracy.csv:
    /// the report adds each candidate's accuracy and Kendall's tau per metric.
    #[arg(long, value_name = "CSV")]
    pub ground_truth: Option<PathBuf>,
    /// The accuracy column (default `cifar10_test` when present, else the first).
    #[arg(long, requires = "ground_truth")]
    pub ground_truth_column: Option<String>,
}

impl GroundTruthArgs {
    /// The report options these arguments ask for.
    pub fn options(&self) -> Result<ReportOptions, StageError> {
        Ok(ReportOptions {
            ground_truth: self
                .ground_truth
                .as_deref()
                .map(|p| GroundTruth::load(p, self.ground_truth_column.as_deref()))
                .transpose()?,
        })
    }
}

/// Why a local run stopped; the exit code follows the stage contract.
pub type LocalError = StageError;

/// Reads a NASSearch YAML file, points its `spec.dataset` at `data` when given, and validates
/// the result.
pub fn load_search_with_data(path: &Path, data: Option<&Path>) -> Result<ResolvedSpec, LocalError> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| StageError::config(format!("{}: {e}", path.display())))?;
    if let Some(data) = data {
        text = with_dataset(&text, data)
            .map_err(|e| StageError::config(format!("{}: {e}", path.display())))?;
    }
    ResolvedSpec::from_yaml(&text).map_err(|e| match e {
        ResolveError::Invalid(errs) => StageError::config(format!(
            "{}: invalid NASSearch: {}",
            path.display(),
            nas_api::validate::describe(&errs)
        )),
        other => StageError::config(format!("{}: {other}", path.display())),
    })
}

/// Runs every stage; returns the summary written to `summary.json`.
pub fn run(args: &LocalArgs) -> Result<Summary, LocalError> {
    let mut resolved = load_search_with_data(&args.search, args.data.as_deref())?;
    let device = crate::device::parse_device(&args.device).map_err(StageError::config)?;
    let options = args.ground_truth.options()?;
    let store: Arc<dyn ObjectStore> = if args.s3 {
        crate::stages::stage_cmd::open_artifacts(&resolved)?
    } else {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&resolved.name));
        std::fs::create_dir_all(&out)
            .map_err(|e| StageError::config(format!("--out {}: {e}", out.display())))?;
        // The artifacts live in `out`, not in the YAML's bucket: say so in every results URI.
        let abs = out
            .canonicalize()
            .map_err(|e| StageError::config(format!("--out {}: {e}", out.display())))?;
        resolved.artifacts_root = format!("file://{}/", abs.display());
        Arc::new(LocalStore::new(&out))
    };
    let search = Search {
        resolved,
        store,
        device,
        progress: !args.quiet,
    };
    run_search(&search, &options)?;
    search.get_json(pipeline::report::SUMMARY)
}

/// Every stage of `search` in order, every shard and finalist in turn. The report is rendered
/// again when `options` add to it (a ground truth).
pub fn run_search(search: &Search, options: &ReportOptions) -> Result<(), LocalError> {
    let spec = search.spec();
    tracing::info!(search = %search.resolved.name, store = %search.store.describe(), "local run");
    step("stage-data", || pipeline::data_stage::run(search))?;
    for shard in 0..spec.sampling.shards {
        step("score", || pipeline::score::run(search, shard))?;
    }
    step("select", || pipeline::select::run(search))?;
    for finalist in 0..spec.selection.top_k {
        step("train", || pipeline::train::run(search, finalist))?;
    }
    step("evaluate", || pipeline::evaluate::run(search))?;
    step("report", || match options.ground_truth {
        Some(_) => pipeline::report::render(search, options),
        None => pipeline::report::run(search),
    })?;
    Ok(())
}

fn step(
    name: &str,
    f: impl FnOnce() -> Result<TerminationSummary, StageError>,
) -> Result<TerminationSummary, StageError> {
    let t = Instant::now();
    let s = f().map_err(|e| e.context(name))?;
    tracing::info!(stage = name, index = ?s.index, outcome = ?s.outcome, seconds = t.elapsed().as_secs_f64(), "{}", s.message);
    Ok(s)
}

/// `text` (a NASSearch YAML document) with `spec.dataset`'s source, format and resolution
/// replaced by those of the data set at `data` (its other fields are kept).
fn with_dataset(text: &str, data: &Path) -> Result<String, String> {
    let (format, resolution) = detect_format(data)?;
    let abs = data
        .canonicalize()
        .map_err(|e| format!("--data {}: {e}", data.display()))?;
    let mut doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let dataset = doc
        .get_mut("spec")
        .and_then(|s| s.as_mapping_mut())
        .ok_or("spec: expected a mapping")?
        .entry("dataset".into())
        .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
    let dataset = dataset
        .as_mapping_mut()
        .ok_or("spec.dataset: expected a mapping")?;
    dataset.insert("source".into(), abs.display().to_string().into());
    let format = serde_yaml::to_value(format).map_err(|e| e.to_string())?;
    dataset.insert("format".into(), format);
    if let Some(side) = resolution {
        dataset.insert("resolution".into(), side.into());
    }
    serde_yaml::to_string(&doc).map_err(|e| e.to_string())
}

/// The `spec.dataset.format` of the data set at `path` and its native resolution, from the
/// format the readers detect (one detection for `--data` and the pipeline's readers).
fn detect_format(path: &Path) -> Result<(DatasetFormat, Option<u32>), String> {
    let expected = "expected a CIFAR-10 folder (train.tar.gz and test.tar.gz), Fashion-MNIST \
                    IDX files (train-images-idx3-ubyte.gz, ...), an image folder with a train/ \
                    folder of class folders, or WebDataset shards";
    if !path.is_dir() {
        return Err(format!("--data {}: not a folder", path.display()));
    }
    let source = DataSource::open(&path.to_string_lossy())
        .map_err(|e| format!("--data {}: {e}; {expected}", path.display()))?;
    match source.format {
        Format::TarPerSplit => Ok((DatasetFormat::Cifar10, Some(32))),
        Format::Idx => Ok((DatasetFormat::FashionMnist, Some(28))),
        Format::ImageFolder => Ok((DatasetFormat::ImageFolder, None)),
        Format::WebDataset => Ok((DatasetFormat::WebDataset, None)),
        other => Err(format!(
            "--data {}: a {} data set, which a NASSearch cannot name; {expected}",
            path.display(),
            serde_json::to_string(&other)
                .unwrap_or_default()
                .trim_matches('"')
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "apiVersion: nas.example.dev/v1alpha1\nkind: NASSearch\nmetadata:\n  name: q\nspec:\n  dataset:\n    source: /usr/share/datasets/fashion-mnist\n    format: fashionMnist\n    resolution: 28\n  space:\n    name: nb201\n";

    fn empty_tar_gz(path: &Path) {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        );
        tar::Builder::new(gz)
            .into_inner()
            .unwrap()
            .finish()
            .unwrap();
    }

    #[test]
    fn data_flag_points_the_search_at_a_cifar10_folder() {
        let dir = tempfile::tempdir().unwrap();
        for split in ["train", "test"] {
            empty_tar_gz(&dir.path().join(format!("{split}.tar.gz")));
        }
        let text = with_dataset(YAML, dir.path()).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let d = &doc["spec"]["dataset"];
        assert_eq!(d["format"].as_str(), Some("cifar10"));
        assert_eq!(d["resolution"].as_u64(), Some(32));
        let source = d["source"].as_str().unwrap();
        assert!(Path::new(source).is_absolute(), "{source}");
        assert_eq!(doc["spec"]["space"]["name"].as_str(), Some("nb201"));
    }

    #[test]
    fn data_flag_detects_idx_files_and_image_folders() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            detect_format(dir.path()).unwrap(),
            (DatasetFormat::FashionMnist, Some(28))
        );
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(folder.path().join("train/cat")).unwrap();
        assert_eq!(
            detect_format(folder.path()).unwrap(),
            (DatasetFormat::ImageFolder, None)
        );
    }

    #[test]
    fn data_flag_names_what_it_expected_in_an_unknown_folder() {
        let dir = tempfile::tempdir().unwrap();
        let err = detect_format(dir.path()).unwrap_err();
        assert!(
            err.contains("--data") && err.contains("train.tar.gz"),
            "{err}"
        );
        let err = detect_format(&dir.path().join("missing")).unwrap_err();
        assert!(err.contains("not a folder"), "{err}");
    }
}

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

/// Reads and validates a NASSearch YAML file.
pub fn load_search(path: &Path) -> Result<ResolvedSpec, LocalError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StageError::Config(format!("{}: {e}", path.display())))?;
    ResolvedSpec::from_yaml(&text).map_err(|e| match e {
        ResolveError::Invalid(errs) => StageError::Config(format!(
            "{}: invalid NASSearch: {}",
            path.display(),
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        other => StageError::Config(format!("{}: {other}", path.display())),
    })
}

/// Runs every stage; returns the summary written to `summary.json`.
pub fn run(args: &LocalArgs) -> Result<Summary, LocalError> {
    let mut resolved = load_search(&args.search)?;
    let device = crate::device::parse_device(&args.device).map_err(StageError::Config)?;
    let options = args.ground_truth.options()?;
    let store: Arc<dyn ObjectStore> = if args.s3 {
        crate::stages::stage_cmd::open_artifacts(&resolved)?
    } else {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&resolved.name));
        std::fs::create_dir_all(&out)
            .map_err(|e| StageError::Config(format!("--out {}: {e}", out.display())))?;
        // The artifacts live in `out`, not in the YAML's bucket: say so in every results URI.
        let abs = out
            .canonicalize()
            .map_err(|e| StageError::Config(format!("--out {}: {e}", out.display())))?;
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

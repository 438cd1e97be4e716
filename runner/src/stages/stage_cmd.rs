//! The cluster's stage commands: `nas-runner <stage> --spec <uri>`, one pipeline stage per pod.
//!
//! Reads the resolved spec (the operator mounts it from a ConfigMap; any store URI works),
//! opens the search's artifact store, runs the stage, and reports per the stage contract: the
//! termination summary (at most 4 KiB) on stdout and in the termination-message file, and the
//! exit code 0 done, 2 invalid configuration, 3 this shard or candidate cannot be done, 143
//! stopped on request with the finished work kept ([`interrupt`]), 1 retry.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nas_api::contract::{Outcome, Stage, TerminationSummary, TERMINATION_MESSAGE_PATH};
use nas_api::resolved::{ResolvedSpec, RESOLVED_SPEC_SCHEMA_VERSION};
use nas_api::uri::StoreUri;

use crate::interrupt;
use crate::pipeline::{self, ErrorKind, Search, StageError};
use crate::store::{self, ObjectStore};
use crate::telemetry::{self, LogFormat};

/// Arguments of a stage command: the spec and the stage options.
#[derive(Debug, Clone, clap::Args)]
pub struct StageArgs {
    /// The resolved spec: a path, `file:///path/spec.json` or `s3://bucket/key/spec.json`.
    #[arg(long)]
    pub spec: String,
    #[command(flatten)]
    pub options: StageOptions,
}

/// Options every stage command takes besides `--spec` (`score` and `report` flatten them
/// too, beside their other forms).
#[derive(Debug, Clone, clap::Args)]
pub struct StageOptions {
    /// Stage: this pod's unit, `I` or `I/N`: the score shard, the train finalist. Default:
    /// `JOB_COMPLETION_INDEX` (Indexed Jobs), else 0.
    #[arg(long, alias = "index", value_name = "I[/N]", requires = "spec")]
    pub shard: Option<String>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Stage: log lines on stderr, `text` or `json` (default: `NAS_LOG_FORMAT`, else text).
    #[arg(long, value_enum, requires = "spec")]
    pub log_format: Option<LogFormat>,
    /// Stage: where the termination summary goes. Default: `NAS_TERMINATION_LOG`, else
    /// `/dev/termination-log` when it exists (in a pod).
    #[arg(long, requires = "spec")]
    pub termination_log: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `stage` and returns the process exit code; never panics on bad input.
pub fn main(stage: Stage, args: &StageArgs) -> u8 {
    let format = args.options.log_format.unwrap_or_else(|| {
        match std::env::var(nas_api::contract::LOG_FORMAT_ENV).as_deref() {
            Ok("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    });
    telemetry::init(format);
    let unit = parse_unit(
        args.options.shard.as_deref(),
        std::env::var("JOB_COMPLETION_INDEX").ok(),
    );
    let index = stage_index(stage, unit.as_ref().ok().map(|u| u.0));
    let log = termination_log(&args.options);
    install_stop_handler(stage, index, log.clone());
    let result = unit.and_then(|unit| run_guarded(stage, args, unit));
    let summary = match result {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::Interrupted => {
            tracing::info!(stage = stage.as_str(), message = %e, exit_code = e.outcome().exit_code(), "stage stopped on request");
            TerminationSummary::new(stage, index, e.outcome(), e.to_string())
        }
        Err(e) => {
            tracing::error!(stage = stage.as_str(), error = %e, exit_code = e.outcome().exit_code(), "stage failed");
            let mut s = TerminationSummary::new(stage, index, e.outcome(), e.to_string());
            s.error = Some(e.to_string());
            s
        }
    };
    if !interrupt::claim_end() {
        // The stop watchdog is ending the process with its own summary.
        loop {
            std::thread::park();
        }
    }
    write_summary(&summary, log.as_deref());
    super::exit_status(summary.outcome)
}

/// The summary on stdout and in the termination-message file.
fn write_summary(summary: &TerminationSummary, log: Option<&Path>) {
    let json = summary.to_json_bounded();
    println!("{json}");
    if let Some(path) = log {
        if let Err(e) = std::fs::write(path, &json) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the termination message");
        }
    }
}

/// SIGTERM stops the stage at its next unit boundary ([`interrupt`]); when it reaches none in
/// time, the watchdog writes this summary and exits.
fn install_stop_handler(stage: Stage, index: Option<u32>, log: Option<PathBuf>) {
    let hook = move || {
        let s = TerminationSummary::new(
            stage,
            index,
            Outcome::Interrupted,
            format!(
                "stopped on request: {} reached no unit boundary in time; its unit is redone on resume",
                stage.as_str()
            ),
        );
        write_summary(&s, log.as_deref());
    };
    if let Err(e) = interrupt::install(hook) {
        tracing::warn!(error = %e, "no SIGTERM handler: a stop request ends the stage at once");
    }
}

fn stage_index(stage: Stage, index: Option<u32>) -> Option<u32> {
    stage.is_indexed().then_some(index).flatten()
}

/// `I`, `I/N` or `JOB_COMPLETION_INDEX`: the index and, when given, the count.
fn parse_unit(flag: Option<&str>, env: Option<String>) -> Result<(u32, Option<u32>), StageError> {
    let (what, text) = match (flag, env) {
        (Some(f), _) => ("--shard", f.to_string()),
        (None, Some(e)) => ("JOB_COMPLETION_INDEX", e),
        (None, None) => return Ok((0, None)),
    };
    let bad = || StageError::config(format!("{what} '{text}': expected I or I/N with I < N"));
    let (i, n) = match text.trim().split_once('/') {
        Some((i, n)) => (i, Some(n)),
        None => (text.trim(), None),
    };
    let i: u32 = i.trim().parse().map_err(|_| bad())?;
    let n: Option<u32> = n.map(|n| n.trim().parse().map_err(|_| bad())).transpose()?;
    if n.is_some_and(|n| i >= n) {
        return Err(bad());
    }
    Ok((i, n))
}

fn termination_log(options: &StageOptions) -> Option<PathBuf> {
    options
        .termination_log
        .clone()
        .or_else(|| std::env::var_os("NAS_TERMINATION_LOG").map(PathBuf::from))
        .or_else(|| {
            let p = Path::new(TERMINATION_MESSAGE_PATH);
            p.exists().then(|| p.to_path_buf())
        })
}

/// Reads the resolved spec at `uri`.
pub fn read_spec(uri: &str) -> Result<ResolvedSpec, StageError> {
    let parsed =
        StoreUri::parse(uri).map_err(|e| StageError::config(format!("--spec {uri}: {e}")))?;
    let (store, key) = store::open_object(&parsed, None)
        .map_err(|e| StageError::from(e).context(&format!("--spec {uri}")))?;
    let bytes = store.get(&key).map_err(|e| match e {
        store::StoreError::NotFound { .. } => StageError::config(format!("--spec {uri}: {e}")),
        other => StageError::from(other).context(&format!("--spec {uri}")),
    })?;
    let spec: ResolvedSpec = serde_json::from_slice(&bytes).map_err(|e| {
        StageError::config(format!("--spec {uri}: not a resolved NASSearch spec: {e}"))
    })?;
    if spec.schema_version > RESOLVED_SPEC_SCHEMA_VERSION {
        return Err(StageError::config(format!(
            "--spec {uri}: schemaVersion {} is newer than this runner reads ({RESOLVED_SPEC_SCHEMA_VERSION}); use a newer runner image",
            spec.schema_version
        )));
    }
    nas_api::validate::validate(&spec.spec).map_err(|errs| {
        StageError::config(format!(
            "--spec {uri}: {}",
            nas_api::validate::describe(&errs)
        ))
    })?;
    Ok(spec)
}

/// Opens the store at the search's artifact root, with the S3 settings of the environment,
/// completed by the spec's `artifacts` (endpoint, region, path style).
pub fn open_artifacts(resolved: &ResolvedSpec) -> Result<Arc<dyn ObjectStore>, StageError> {
    let root = resolved.artifacts_root.trim_end_matches('/');
    let uri = StoreUri::parse(root)
        .map_err(|e| StageError::config(format!("artifactsRoot {root}: {e}")))?;
    let s3 = match &uri {
        StoreUri::S3 { bucket, .. } => Some(pipeline::s3_config(resolved, bucket)?),
        StoreUri::File { .. } => None,
    };
    Ok(Arc::from(store::open_store(&uri, s3.as_ref())?))
}

/// The one panic boundary of a stage pod: a panic (libtorch out of memory, a bug) ends as a
/// retryable failure with a summary naming the stage and the cause, not as exit 101 with none.
fn run_guarded(
    stage: Stage,
    args: &StageArgs,
    unit: (u32, Option<u32>),
) -> Result<TerminationSummary, StageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(stage, args, unit)))
        .unwrap_or_else(|p| {
            Err(StageError::transient(format!(
                "stage {} panicked: {}",
                stage.as_str(),
                crate::panics::panic_message(&*p)
            )))
        })
}

fn run(
    stage: Stage,
    args: &StageArgs,
    unit: (u32, Option<u32>),
) -> Result<TerminationSummary, StageError> {
    let resolved = read_spec(&args.spec)?;
    let device = crate::device::parse_device(&args.options.device).map_err(StageError::config)?;
    let (index, count) = unit;
    if let (Some(n), Some(field)) = (count, stage.unit_field()) {
        let e = stage.units(&resolved.spec);
        if n != e {
            return Err(StageError::config(format!(
                "--shard {index}/{n}: the spec asks for {e} ({field}), not {n}"
            )));
        }
    }
    let span = tracing::info_span!("stage", search = %format!("{}/{}", resolved.namespace, resolved.name), stage = stage.as_str(), shard = index);
    let _guard = span.enter();
    let store = open_artifacts(&resolved)?;
    tracing::info!(store = %store.describe(), spec_hash = %resolved.spec_hash, "stage starts");
    let search = Search {
        resolved,
        store,
        device,
        progress: !args.options.quiet,
    };
    let summary = match stage {
        Stage::StageData => pipeline::data_stage::run(&search),
        Stage::Score => pipeline::score::run(&search, index),
        Stage::Select => pipeline::select::run(&search),
        Stage::Train => pipeline::train::run(&search, index),
        Stage::Evaluate => pipeline::evaluate::run(&search),
        Stage::Report => pipeline::report::run(&search),
    }?;
    tracing::info!(outcome = ?summary.outcome, message = %summary.message, "stage done");
    Ok(summary)
}

/// `nas-runner cleanup --spec`: deletes every artifact of the search (the operator's finalizer
/// runs it when `deleteArtifactsOnDeletion` is set). Returns the number of objects deleted.
pub fn cleanup(args: &StageArgs) -> u8 {
    telemetry::init(args.options.log_format.unwrap_or_default());
    let result = read_spec(&args.spec).and_then(|resolved| {
        let store = open_artifacts(&resolved)?;
        let keys = store.list("")?;
        for k in &keys {
            store.delete(k)?;
        }
        Ok((store.describe(), keys.len()))
    });
    match result {
        Ok((where_, n)) => {
            println!("{}", serde_json::json!({"deleted": n, "store": where_}));
            0
        }
        Err(e) => {
            eprintln!("cleanup: {e}");
            super::exit_status(e.outcome())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_from_the_flag_or_the_job_index() {
        assert_eq!(parse_unit(Some("3/8"), None).unwrap(), (3, Some(8)));
        assert_eq!(parse_unit(Some("2"), Some("5".into())).unwrap(), (2, None));
        assert_eq!(parse_unit(None, Some("5".into())).unwrap(), (5, None));
        assert_eq!(parse_unit(None, None).unwrap(), (0, None));
        for bad in ["8/8", "x", "1/", "-1", "1/0"] {
            let e = parse_unit(Some(bad), None).unwrap_err();
            assert_eq!(e.outcome().exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("--shard"), "{e}");
        }
        assert!(parse_unit(None, Some("abc".into()))
            .unwrap_err()
            .to_string()
            .contains("JOB_COMPLETION_INDEX"));
    }
}

/// Arguments of `nas-runner report`: the stage (`--spec`) or a re-render of a finished run's
/// artifact folder (`DIR`, e.g. `nas-runner local`'s `--out`).
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A run's artifact folder (holding `spec.json`): render its report again.
    #[arg(conflicts_with = "spec", required_unless_present = "spec")]
    pub dir: Option<PathBuf>,
    /// Stage: the resolved spec.
    #[arg(long)]
    pub spec: Option<String>,
    #[command(flatten)]
    pub options: StageOptions,
    #[command(flatten)]
    pub ground_truth: crate::stages::local::GroundTruthArgs,
}

/// `nas-runner report`: the stage, or a re-render of `DIR`; returns the exit code.
pub fn report(args: &ReportArgs) -> u8 {
    let Some(dir) = &args.dir else {
        let stage = StageArgs {
            spec: args.spec.clone().unwrap_or_default(),
            options: args.options.clone(),
        };
        if args.ground_truth.ground_truth.is_some() {
            eprintln!("report: --ground-truth works on a DIR; run `nas-runner report DIR --ground-truth ...` on the downloaded artifacts");
            return 2;
        }
        return main(Stage::Report, &stage);
    };
    telemetry::init(args.options.log_format.unwrap_or_default());
    let result = (|| {
        let options = args.ground_truth.options()?;
        let spec = dir.join("spec.json");
        let resolved = read_spec(&spec.to_string_lossy())?;
        let search = Search {
            resolved,
            store: Arc::new(store::LocalStore::open(dir)?),
            device: tch::Device::Cpu,
            progress: false,
        };
        pipeline::report::render(&search, &options)?;
        search.get_json::<serde_json::Value>(pipeline::report::SUMMARY)
    })();
    match result {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => {
            eprintln!("report {}: {e}", dir.display());
            super::exit_status(e.outcome())
        }
    }
}

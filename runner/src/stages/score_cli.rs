//! `nas-runner score`: the ad-hoc scoring command. Reads one architecture a line, computes the
//! chosen metrics for each, and writes one JSON line per architecture in input order:
//! `{"arch": ..., "metrics": {...}, "seconds": {...}}`, plus `"errors": {"m": "..."}` when a
//! metric failed on that architecture (the run goes on).
//!
//! Data: `--data random` (by that name only) gives a synthetic batch; anything else is a data-set
//! location for `data::load_balanced_sample` (train split, balanced per class, `--seed`).
//! A metric with a fixed per-class sample (`angle_loss`'s 10) gets it unless `--batch-size`
//! is given, the same for every candidate; the other data metrics share one sample large
//! enough for the largest batch requested.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use nas_api::contract::Outcome;
use serde::Serialize;
use thiserror::Error;

use crate::data::{load_balanced_sample, Split};
use crate::metrics::scoring::{score_one, Batches, DumpTarget, Scores};
use crate::metrics::{self, MetricBatch, MetricContext, MetricSpec};
use crate::nn::NetBuilder;

/// Arguments of `nas-runner score`: the ad-hoc form (`--space --archs --metrics --data`) or
/// the pipeline stage (`--spec`, with the stage options).
#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    /// Pipeline stage: the resolved spec; scores this pod's shard of `candidates.jsonl`.
    #[arg(long, conflicts_with_all = ["space", "archs", "metrics", "data", "out"])]
    pub spec: Option<String>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`; the stage options (`--shard`, ...) need `--spec`.
    #[command(flatten)]
    pub stage: crate::stages::stage_cmd::StageOptions,
    /// Search space of the architectures (`nb201`, `darts`, or `toy` for small test nets).
    #[arg(long, required_unless_present = "spec")]
    pub space: Option<String>,
    /// File with one architecture a line (blank lines and `#` comments are skipped).
    #[arg(long, required_unless_present = "spec")]
    pub archs: Option<PathBuf>,
    /// Comma-separated metric names.
    #[arg(long, value_delimiter = ',', required_unless_present = "spec")]
    pub metrics: Vec<String>,
    /// Data-set location (CIFAR-10 folder, ImageNet-style folder or tar, IDX folder, shards),
    /// or `random` for a synthetic batch.
    #[arg(long, required_unless_present = "spec")]
    pub data: Option<String>,
    /// Overrides every metric's reference batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of the data sample, the initialisations and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (JSON lines); standard output when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Metric option `NAME=VALUE` (e.g. `repeats=3`, `iterations=50`), repeatable; a name no
    /// metric reads is an error.
    #[arg(long = "option", value_name = "NAME=VALUE")]
    pub options: Vec<String>,
    /// Also write, per architecture and metric, the initial weights and inputs the metric used
    /// as `DIR/<line>-<metric>.safetensors` (bench/README.md, "The exchange format"), for the
    /// PyTorch reference's parity check. NB201 only; needs a data set and `repeats=1`.
    #[arg(long, value_name = "DIR")]
    pub dump_dir: Option<PathBuf>,
    /// Keep the records already in `--out` (a stopped run's) and score only the architectures
    /// after them, appending; the kept records must be the input's first architectures.
    #[arg(long, requires = "out")]
    pub resume: bool,
}

/// Why the command stopped.
#[derive(Debug, Error)]
pub enum ScoreError {
    /// Bad arguments or unreadable inputs: exit code 2.
    #[error("{0}")]
    Config(String),
    /// Writing the output failed: exit code 1 (worth a retry).
    #[error("{path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

impl ScoreError {
    pub fn outcome(&self) -> Outcome {
        match self {
            ScoreError::Config(_) => Outcome::InvalidConfig,
            ScoreError::Output { .. } => Outcome::Failed,
        }
    }
}

/// One output line.
#[derive(Debug, Serialize)]
struct Line {
    arch: String,
    #[serde(flatten)]
    scores: Scores,
}

/// Turns `(space, arch)` into a network builder.
pub type Resolver<'a> = &'a dyn Fn(&str, &str) -> Result<Box<dyn NetBuilder>, String>;

/// The search spaces (`nb201`, `darts`) with CIFAR-sized defaults, plus the `toy` space of
/// `metrics::testing` used in tests.
pub fn default_resolver(space: &str, arch: &str) -> Result<Box<dyn NetBuilder>, String> {
    match space {
        "toy" => metrics::testing::toy_builder(arch),
        other => crate::space::builder(other, arch, &crate::nn::NetOptions::default())
            .map_err(|e| e.to_string()),
    }
}

/// Parses `NAME=VALUE` options.
fn parse_options(raw: &[String]) -> Result<BTreeMap<String, f64>, ScoreError> {
    raw.iter()
        .map(|o| {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                ScoreError::Config(format!("--option '{o}': expected NAME=VALUE"))
            })?;
            let v: f64 = v.trim().parse().map_err(|_| {
                ScoreError::Config(format!("--option '{o}': value '{v}' is not a number"))
            })?;
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

fn read_archs(path: &PathBuf) -> Result<Vec<String>, ScoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScoreError::Config(format!("--archs {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Runs the command; returns the number of architectures written.
pub fn run(args: &ScoreArgs, resolve: Resolver) -> Result<usize, ScoreError> {
    let specs: Vec<&'static MetricSpec> = args
        .metrics
        .iter()
        .map(|m| metrics::lookup(m.trim()).map_err(|e| ScoreError::Config(e.to_string())))
        .collect::<Result<_, _>>()?;
    if specs.is_empty() {
        return Err(ScoreError::Config("--metrics: no metric named".into()));
    }
    let device = crate::device::parse_device(&args.stage.device).map_err(ScoreError::Config)?;
    if args.batch_size == Some(0) {
        return Err(ScoreError::Config("--batch-size must be at least 1".into()));
    }
    let mut ctx = MetricContext::new(args.seed, device);
    ctx.batch_size = args.batch_size;
    ctx.options = parse_options(&args.options)?;
    metrics::check_options(&specs, ctx.options.keys())
        .map_err(|e| ScoreError::Config(format!("--option: {e}")))?;
    let missing = |flag: &str| ScoreError::Config(format!("{flag} is required without --spec"));
    let space = args.space.as_deref().ok_or_else(|| missing("--space"))?;
    let archs = read_archs(args.archs.as_ref().ok_or_else(|| missing("--archs"))?)?;
    let data = args.data.as_deref().ok_or_else(|| missing("--data"))?;
    if let Some(dir) = &args.dump_dir {
        if data == "random" {
            return Err(ScoreError::Config(
                "--dump-dir needs a data set: the exchange format holds uint8 images".into(),
            ));
        }
        if ctx.option("repeats", 1.0) != 1.0 {
            return Err(ScoreError::Config(
                "--dump-dir records one initialisation: drop the repeats option".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| ScoreError::Output {
            path: dir.display().to_string(),
            source: e,
        })?;
    }
    let builders: Vec<Result<Box<dyn NetBuilder>, String>> =
        archs.iter().map(|a| resolve(space, a)).collect();

    let batches = match builders.iter().find_map(|b| b.as_ref().ok()) {
        Some(first) => load_batches(args, data, &specs, &ctx, first.as_ref())?,
        None => Batches::default(),
    };

    let done = match (&args.out, args.resume) {
        (Some(p), true) => resume_point(p, &archs)?,
        _ => 0,
    };
    if done > 0 {
        eprintln!(
            "score: resuming after {done} of {} architectures",
            archs.len()
        );
    }
    let mut sink: Box<dyn Write> = match &args.out {
        Some(p) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(args.resume)
                .truncate(!args.resume)
                .open(p)
                .map_err(|e| ScoreError::Output {
                    path: p.display().to_string(),
                    source: e,
                })?;
            Box::new(std::io::BufWriter::new(file))
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let out_name = args
        .out
        .as_ref()
        .map_or("stdout".to_string(), |p| p.display().to_string());
    for (i, (arch, builder)) in archs.iter().zip(&builders).enumerate().skip(done) {
        let scores = match builder {
            Ok(b) => {
                let dump = args.dump_dir.as_ref().map(|dir| DumpTarget {
                    dir: dir.clone(),
                    line: i,
                });
                score_one(b.as_ref(), &specs, &batches, &ctx, dump.as_ref())
            }
            Err(e) => Scores {
                errors: BTreeMap::from([("arch".to_string(), e.clone())]),
                ..Scores::default()
            },
        };
        let record = Line {
            arch: arch.clone(),
            scores,
        };
        let line = serde_json::to_string(&record).map_err(|e| ScoreError::Output {
            path: out_name.clone(),
            source: std::io::Error::other(e),
        })?;
        writeln!(sink, "{line}")
            .and_then(|_| sink.flush())
            .map_err(|e| ScoreError::Output {
                path: out_name.clone(),
                source: e,
            })?;
        eprintln!("score: {}/{} {}", i + 1, archs.len(), arch);
    }
    Ok(archs.len())
}

/// How many of `archs` the output `path` already holds records of, in input order; the file is
/// cut after its last complete line (a run killed mid-write leaves a partial one).
fn resume_point(path: &Path, archs: &[String]) -> Result<usize, ScoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(ScoreError::Config(format!("--out {}: {e}", path.display()))),
    };
    let (mut done, mut kept) = (0, 0);
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break;
        }
        let at = || format!("--resume: {} line {}", path.display(), done + 1);
        let record: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| ScoreError::Config(format!("{}: not a score record: {e}", at())))?;
        let arch = record.get("arch").and_then(|a| a.as_str()).unwrap_or("");
        match archs.get(done) {
            Some(expected) if expected == arch => {}
            Some(expected) => {
                return Err(ScoreError::Config(format!(
                    "{} holds '{arch}' but input architecture {} is '{expected}': \
                     another run's output? Use another --out",
                    at(),
                    done + 1
                )))
            }
            None => {
                return Err(ScoreError::Config(format!(
                    "{} goes past the {} input architectures",
                    at(),
                    archs.len()
                )))
            }
        }
        done += 1;
        kept += line.len();
    }
    if kept < text.len() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(kept as u64));
        file.map_err(|e| ScoreError::Output {
            path: path.display().to_string(),
            source: e,
        })?;
    }
    Ok(done)
}

/// The samples the metrics read: drawn from `data` (or synthetic), balanced over the classes
/// of the first network.
fn load_batches(
    args: &ScoreArgs,
    data: &str,
    specs: &[&'static MetricSpec],
    ctx: &MetricContext,
    first: &dyn NetBuilder,
) -> Result<Batches, ScoreError> {
    let classes = first.num_classes().max(1) as usize;
    // `--batch-size` sets every metric's sample, fixed per-class ones included.
    let per_class = |spec: &MetricSpec| match args.batch_size {
        Some(n) => n.max(1).div_ceil(classes),
        None => ctx.per_class_for(spec, classes),
    };
    Batches::load(specs, args.dump_dir.is_some(), per_class, |per_class| {
        if data == "random" {
            return Ok(MetricBatch::random(
                (per_class * classes) as i64,
                first.input_shape(),
                classes as i64,
                args.seed,
                ctx.device,
            ));
        }
        let raw = load_balanced_sample(data, Split::Train, per_class, args.seed)
            .map_err(|e| ScoreError::Config(format!("--data {data}: {e}")))?;
        MetricBatch::from_image_batch(&raw, ctx.device)
            .map_err(|e| ScoreError::Config(format!("--data {data}: {e}")))
    })
}

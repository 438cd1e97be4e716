//! Scoring one architecture with the registry's metrics: the samples they read, a failure of
//! one metric (error or libtorch panic) kept as that metric's error, and optional exchange
//! dumps. Not a metric itself: the `score` stage and the `score` command both call it.
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{MetricBatch, MetricContext, MetricSpec, MetricValue};
use crate::nn::NetBuilder;
use crate::panics::{panic_message, without_backtrace};

/// What scoring one architecture gave: each metric's value or error, and its seconds.
#[derive(Debug, Default, Serialize)]
pub struct Scores {
    pub metrics: BTreeMap<String, MetricValue>,
    pub seconds: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
}

impl Scores {
    /// The errors as one line (`metric: error; ...`), when any metric failed.
    pub fn error_line(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| {
            self.errors
                .iter()
                .map(|(m, e)| format!("{m}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// The data each metric reads, by metric name.
#[derive(Default)]
pub struct Batches {
    pub by_metric: BTreeMap<&'static str, MetricBatch>,
}

impl Batches {
    /// One sample per distinct size, shared by the metrics that ask for that size: `per_class`
    /// says how many images per class a metric reads, `draw` draws a balanced sample of that
    /// many. With `every_metric`, data-free metrics get one too (an exchange dump carries a
    /// batch for every metric).
    pub fn load<E>(
        specs: &[&'static MetricSpec],
        every_metric: bool,
        per_class: impl Fn(&MetricSpec) -> usize,
        mut draw: impl FnMut(usize) -> Result<MetricBatch, E>,
    ) -> Result<Self, E> {
        let mut cache: BTreeMap<usize, MetricBatch> = BTreeMap::new();
        let mut by_metric = BTreeMap::new();
        for spec in specs.iter().filter(|s| s.needs.data || every_metric) {
            let n = per_class(spec).max(1);
            if let std::collections::btree_map::Entry::Vacant(slot) = cache.entry(n) {
                slot.insert(draw(n)?);
            }
            by_metric.insert(spec.name, cache[&n].shallow());
        }
        Ok(Batches { by_metric })
    }
}

/// Where `score_one` writes exchange dumps: `dir/<line>-<metric>.safetensors`.
pub struct DumpTarget {
    pub dir: PathBuf,
    /// The architecture's index in the input (0-based).
    pub line: usize,
}

/// Every metric of `specs` on one architecture; a failing metric (error or libtorch panic) is recorded.
/// With `dump`, each metric's initial weights and inputs are written too; a dump that cannot
/// be written is an error of that metric.
pub fn score_one(
    builder: &dyn NetBuilder,
    specs: &[&'static MetricSpec],
    batches: &Batches,
    ctx: &MetricContext,
    dump: Option<&DumpTarget>,
) -> Scores {
    let mut record = Scores::default();
    let empty = MetricBatch::random(1, builder.input_shape(), 1, 0, tch::Device::Cpu);
    for spec in specs {
        let batch = batches.by_metric.get(spec.name).unwrap_or(&empty);
        if dump.is_some() {
            super::dump::start();
            // Data-free metrics read no batch; the file still carries one (the format's input).
            super::dump::record_batch(batch);
        }
        let start = Instant::now();
        let mut result = catch_unwind(AssertUnwindSafe(|| {
            super::compute(spec, builder, batch, ctx)
        }));
        let recording = super::dump::finish();
        if let (Some(target), Some(rec), Ok(Ok(_))) = (dump, recording, &result) {
            if let Err(e) = write_dump(target, spec.name, builder, &rec) {
                result = Ok(Err(super::MetricError::Invalid {
                    metric: spec.name,
                    message: format!("--dump-dir: {e}"),
                }));
            }
        }
        record
            .seconds
            .insert(spec.name.to_string(), start.elapsed().as_secs_f64());
        match result {
            Ok(Ok(v)) => {
                record.metrics.insert(spec.name.to_string(), v);
            }
            Ok(Err(e)) => {
                record
                    .errors
                    .insert(spec.name.to_string(), without_backtrace(&e.to_string()));
            }
            Err(p) => {
                record
                    .errors
                    .insert(spec.name.to_string(), panic_message(&*p));
            }
        }
    }
    record
}

fn write_dump(
    target: &DumpTarget,
    metric: &str,
    builder: &dyn NetBuilder,
    rec: &super::dump::Recording,
) -> Result<(), super::dump::DumpError> {
    let path = target
        .dir
        .join(format!("{:05}-{metric}.safetensors", target.line));
    let meta = BTreeMap::from([
        ("arch", builder.arch()),
        ("num_classes", builder.num_classes().to_string()),
        ("metric", metric.to_string()),
    ]);
    let built;
    let rec = if rec.weights.is_none() {
        // `params` and `flops` build no network: the file carries a fresh default one.
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = builder.build(&vs.root());
        built = super::dump::Recording {
            weights: Some(super::dump::snapshot(&vs)),
            batch: rec.batch.as_ref().map(|b| b.shallow()),
            ..Default::default()
        };
        &built
    } else {
        rec
    };
    super::dump::write(&path, rec, &|p| builder.exchange_name(p), meta)
}

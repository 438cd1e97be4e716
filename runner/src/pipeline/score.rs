//! `score`: shard `i` of `n` scores its contiguous slice of `candidates.jsonl` with the spec's
//! metrics and writes `score/shard-{i:05}.jsonl`, then `score/shard-{i:05}._SUCCESS`.
//!
//! Metrics read a balanced sample of the staged training split (the same for every candidate
//! and every shard: drawn with the spec's seed): a metric with a fixed per-class sample its own
//! (`angle_loss`: the paper's 10 per class), the other data metrics `spec.metrics.batchSize`
//! images.
//! A metric that fails on one candidate is recorded in that candidate's `error` and the shard
//! goes on; a shard where every candidate fails is not marked done and exits 3.
//!
//! A pod stopped on request (SIGTERM: a suspended or preempted Job) writes the records it
//! finished to `score/shard-{i:05}.partial.jsonl`, as it also does every
//! [`CHECKPOINT_SECONDS`] for pods killed without warning; the shard's next pod keeps those
//! records and scores only the rest.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::records::{CandidateRecord, ScoreRecord, SCHEMA_VERSION};

use super::{candidates, DataShape, Search, StageError, StageResult};
use crate::data::sample::{sample_source, SampleOptions};
use crate::data::{DataSource, Split};
use crate::interrupt;
use crate::metrics::scoring::{score_one, Batches};
use crate::metrics::{self, MetricBatch, MetricContext, MetricSpec};
use crate::progress::Progress;

pub use nas_api::layout::key::{
    score_shard as shard_key, score_shard_partial as partial_key,
    score_shard_success as success_key,
};

/// How often a running shard saves its finished records (a pod may be killed without warning).
const CHECKPOINT_SECONDS: u64 = 60;

/// The records of every finished shard by candidate index, and the shards that have not
/// finished.
pub(crate) fn load_finished(
    search: &Search,
) -> Result<(BTreeMap<u64, ScoreRecord>, Vec<u32>), StageError> {
    let mut records = BTreeMap::new();
    let mut missing = Vec::new();
    for shard in 0..search.spec().sampling.shards {
        if !search.done(&success_key(shard))? {
            missing.push(shard);
            continue;
        }
        for r in search.get_jsonl::<ScoreRecord>(&shard_key(shard))? {
            super::schema_ok("score record", r.schema)?;
            records.insert(r.index, r);
        }
    }
    Ok((records, missing))
}

/// Scores shard `shard` of `spec.sampling.shards`.
pub fn run(search: &Search, shard: u32) -> StageResult {
    let shards = search.spec().sampling.shards;
    if shard >= shards {
        return Err(StageError::config(format!(
            "shard index {shard} is out of range: spec.sampling.shards is {shards}"
        )));
    }
    search.ensure_spec()?;
    if search.done(&success_key(shard))? {
        let done: Vec<ScoreRecord> = search.get_jsonl(&shard_key(shard))?;
        let mut s = super::skipped(Stage::Score, Some(shard), &format!("shard {shard}"));
        s.scored = Some(done.iter().filter(|r| r.error.is_none()).count() as u64);
        s.failed = Some(done.iter().filter(|r| r.error.is_some()).count() as u64);
        return Ok(s);
    }
    let candidates = candidates::ensure(search)?;
    let range = candidates::shard_range(candidates.len(), shard, shards);
    let shape = DataShape::of(search)?;
    let specs: Vec<&'static MetricSpec> = search
        .spec()
        .metrics
        .names
        .iter()
        .map(|m| {
            metrics::lookup(m.as_str())
                .map_err(|e| StageError::config(format!("spec.metrics.names: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let ctx = metric_context(search);
    let batches = load_batches(search, &specs, &ctx, &shape)?;

    let total = range.len();
    let mut kept = kept_records(search, shard, &candidates[range.clone()])?;
    let resumed = kept.len();
    tracing::info!(
        shard,
        candidates = total,
        kept = resumed,
        "scoring the shard"
    );
    let mut records = Vec::with_capacity(total);
    let mut progress = Progress::new(
        format!("score: shard {shard}"),
        total as u64,
        search.progress,
    );
    let mut saved = Instant::now();
    for c in &candidates[range] {
        if let Some(r) = kept.remove(&c.index) {
            records.push(r);
            progress.inc(&format!("candidate {} (kept)", c.index));
            continue;
        }
        if interrupt::requested() {
            let key = partial_key(shard);
            search.put_jsonl(&key, &records)?;
            return Err(StageError::interrupted(format!(
                "shard {shard}: stopped on request after {} of {total} candidates; they are kept in {key} for the shard's next pod",
                records.len(),
            )));
        }
        let record = score_candidate(search, c, &shape, &specs, &batches, &ctx);
        progress.inc(&format!("candidate {}", c.index));
        tracing::info!(
            shard,
            candidate = c.index,
            failed = record.error.is_some(),
            "scored"
        );
        records.push(record);
        if saved.elapsed() >= Duration::from_secs(CHECKPOINT_SECONDS) {
            search.put_jsonl(&partial_key(shard), &records)?;
            saved = Instant::now();
        }
    }

    let failed: Vec<&ScoreRecord> = records.iter().filter(|r| r.error.is_some()).collect();
    search.put_jsonl(&shard_key(shard), &records)?;
    let mut summary = TerminationSummary::new(Stage::Score, Some(shard), Outcome::Succeeded, "");
    summary.scored = Some((records.len() - failed.len()) as u64);
    summary.failed = Some(failed.len() as u64);
    summary.errors = failed
        .iter()
        .take(5)
        .map(|r| {
            format!(
                "candidate {}: {}",
                r.index,
                r.error.as_deref().unwrap_or("")
            )
        })
        .collect();
    if !records.is_empty() && failed.len() == records.len() {
        return Err(StageError::undoable(format!(
            "shard {shard}: every one of its {} candidates failed; first: {}",
            records.len(),
            summary.errors.first().cloned().unwrap_or_default()
        )));
    }
    search.mark_done(&success_key(shard))?;
    summary.message = format!(
        "shard {shard}: scored {} of {} candidates",
        records.len() - failed.len(),
        records.len()
    );
    summary.artifacts = vec![shard_key(shard), success_key(shard)];
    if resumed > 0 {
        summary.message += &format!(" ({resumed} kept from an earlier pod)");
        summary.values.insert("resumed".into(), resumed as f64);
    }
    // The shard's own file now holds these records; a leftover partial only costs space.
    if let Err(e) = search.store.delete(&partial_key(shard)) {
        tracing::warn!(shard, error = %e, "cannot delete the shard's partial records");
    }
    Ok(summary)
}

/// Scores one candidate; a failure is the record's `error`.
fn score_candidate(
    search: &Search,
    c: &CandidateRecord,
    shape: &DataShape,
    specs: &[&'static MetricSpec],
    batches: &Batches,
    ctx: &MetricContext,
) -> ScoreRecord {
    match search.build(&c.arch, shape) {
        Ok(builder) => {
            let scores = score_one(builder.as_ref(), specs, batches, ctx, None);
            ScoreRecord {
                schema: SCHEMA_VERSION,
                index: c.index,
                arch: c.arch.clone(),
                error: scores.error_line(),
                metrics: scores.metrics,
                seconds: scores.seconds,
            }
        }
        Err(e) => ScoreRecord {
            schema: SCHEMA_VERSION,
            index: c.index,
            arch: c.arch.clone(),
            metrics: BTreeMap::new(),
            seconds: BTreeMap::new(),
            error: Some(e.to_string()),
        },
    }
}

/// The records an earlier pod of this shard kept, by candidate index: only those of this
/// shard's candidates with the same architecture and a known schema. Unreadable partial
/// records are scored again, not trusted.
fn kept_records(
    search: &Search,
    shard: u32,
    candidates: &[CandidateRecord],
) -> Result<BTreeMap<u64, ScoreRecord>, StageError> {
    let key = partial_key(shard);
    let Some(bytes) = search.store.get_opt(&key)? else {
        return Ok(BTreeMap::new());
    };
    let arch: BTreeMap<u64, &str> = candidates
        .iter()
        .map(|c| (c.index, c.arch.as_str()))
        .collect();
    let mut kept = BTreeMap::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        match serde_json::from_str::<ScoreRecord>(line) {
            Ok(r)
                if super::schema_ok("score record", r.schema).is_ok()
                    && arch.get(&r.index) == Some(&r.arch.as_str()) =>
            {
                kept.insert(r.index, r);
            }
            _ => {
                tracing::warn!(shard, key = %key, "ignoring a partial record that does not match this shard")
            }
        }
    }
    Ok(kept)
}

/// The spec's metric settings as metric options.
pub(crate) fn metric_context(search: &Search) -> MetricContext {
    let m = &search.spec().metrics;
    let mut ctx = MetricContext::new(search.seed(), search.device);
    ctx.batch_size = Some(m.batch_size as usize);
    ctx.options
        .insert("iterations".into(), f64::from(m.angle_loss_steps));
    ctx.options.insert("repeats".into(), f64::from(m.repeats));
    ctx
}

/// The metric samples of the staged training split.
fn load_batches(
    search: &Search,
    specs: &[&'static MetricSpec],
    ctx: &MetricContext,
    shape: &DataShape,
) -> Result<Batches, StageError> {
    let source = DataSource::staged(search.store.clone(), "data");
    let per_class = |spec: &MetricSpec| ctx.per_class_for(spec, shape.classes);
    Batches::load(specs, false, per_class, |per_class| {
        let raw = sample_source(
            &source,
            Split::Train,
            per_class,
            search.seed(),
            &SampleOptions::default(),
        )
        .map_err(|e| StageError::config(format!("metric sample of the staged data: {e}")))?;
        MetricBatch::from_image_batch(&raw, ctx.device)
            .map_err(|e| StageError::transient(format!("metric sample: {e}")))
    })
}

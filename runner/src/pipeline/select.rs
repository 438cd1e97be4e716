//! `select`: merge the score shards, apply the constraints, rank, keep the top K.
//!
//! The ranking metric is the first of `spec.metrics.names`. For `angle_loss` the paper's fusion
//! applies (rank of the cosine plus rank of the final loss, re-ranked); with `rank: rankSum` (the
//! default, the paper's search rank) the #Param rank is added. Ranks are average ranks over the
//! eligible candidates, ascending: the highest score is the best. A candidate is eligible when
//! its shard finished, it has the ranking metric, and it meets `maxParams` / `maxFlops`.

use std::collections::BTreeMap;

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::records::{
    AngleLoss, CandidateRecord, MetricValue, RankingEntry, ScoreRecord, TopK, SCHEMA_VERSION,
};
use nas_api::spec::RankRule;

use super::{candidates, score, DataShape, Search, StageError, StageResult};
use crate::metrics::{self, fusion, rank::average_ranks};

pub use nas_api::layout::key::{
    SELECT_RANKING as RANKING, SELECT_SUCCESS as SUCCESS, SELECT_TOPK as TOPK,
};

/// Select reads every finished shard, so its counts are the search's own: the operator takes
/// them over the score pods' summaries, some of which may be gone with their Job (a TTL of 0).
fn count_scored(s: &mut TerminationSummary, records: &BTreeMap<u64, ScoreRecord>) {
    let failed = records.values().filter(|r| r.error.is_some()).count() as u64;
    s.scored = Some(records.len() as u64 - failed);
    s.failed = Some(failed);
}

pub fn run(search: &Search) -> StageResult {
    let started = std::time::Instant::now();
    search.ensure_spec()?;
    if search.done(SUCCESS)? {
        let topk: TopK = search.get_json(TOPK)?;
        let (records, _) = score::load_finished(search)?;
        let mut s = super::skipped(Stage::Select, None, "select");
        count_scored(&mut s, &records);
        s.top_k = topk
            .entries
            .iter()
            .map(|e| super::train::candidate_summary(e, None))
            .collect();
        return Ok(s);
    }
    let cands = candidates::load(search)?;
    let shards = search.spec().sampling.shards;
    let (records, missing) = score::load_finished(search)?;
    if missing.len() == shards as usize {
        return Err(StageError::undoable(
            "no score shard finished: nothing to select from",
        ));
    }
    let shape = DataShape::of(search)?;
    let metric = search
        .spec()
        .metrics
        .names
        .first()
        .map(|m| m.as_str())
        .ok_or_else(|| StageError::config("spec.metrics.names is empty"))?;
    let spec = metrics::lookup(metric).map_err(|e| StageError::config(e.to_string()))?;

    // Size of every candidate, and why each ineligible one is out.
    let mut rows = Vec::with_capacity(cands.len());
    for c in &cands {
        // Constraints and reported sizes are those of the network the winner is trained as
        // (`evaluate`'s width and depth); the #Param rank is the scored network's.
        let deployed = super::train::build_for(search, &c.arch, &shape, &search.spec().evaluate)?;
        let (params, flops) = (deployed.param_count() as u64, deployed.flops() as u64);
        let scored_params = search.build(&c.arch, &shape)?.param_count() as f64;
        let c_ = &search.spec().constraints;
        let value = records
            .get(&c.index)
            .and_then(|r| r.metrics.get(metric))
            .copied();
        let excluded = match records.get(&c.index) {
            None => Some(format!(
                "shard {} did not finish",
                shard_of(c.index as usize, cands.len(), shards)
            )),
            Some(r) if value.is_none() => Some(format!(
                "no {metric}: {}",
                r.error.as_deref().unwrap_or("not computed")
            )),
            _ if c_.max_params.is_some_and(|m| params > m) => {
                Some(format!("{params} parameters > constraints.maxParams"))
            }
            _ if c_.max_flops.is_some_and(|m| flops > m) => {
                Some(format!("{flops} FLOPs > constraints.maxFlops"))
            }
            _ => None,
        };
        rows.push(Row {
            c,
            params,
            flops,
            value,
            excluded,
            scored_params,
        });
    }

    let eligible: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].excluded.is_none())
        .collect();
    if eligible.is_empty() {
        return Err(StageError::undoable(format!(
            "no candidate is eligible (first reason: {})",
            rows.first()
                .and_then(|r| r.excluded.clone())
                .unwrap_or_default()
        )));
    }
    let params: Vec<f64> = eligible.iter().map(|&i| rows[i].scored_params).collect();
    let param_rank = average_ranks(&params);
    let use_params = search.spec().selection.rank == RankRule::RankSum && metric != "params";
    let metric_rank: Vec<f64> = if spec.value == metrics::ValueKind::AngleLoss {
        let values: Vec<AngleLoss> = eligible.iter().map(|&i| as_angle(rows[i].value)).collect();
        let opts = fusion::FusionOptions::default();
        fusion::metric_rank(&values, &opts).unwrap_or_else(|| vec![0.0; values.len()])
    } else {
        let sign = if spec.higher_is_better { 1.0 } else { -1.0 };
        let v: Vec<f64> = eligible
            .iter()
            .map(|&i| {
                let x = rows[i]
                    .value
                    .and_then(|v| v.as_scalar())
                    .unwrap_or(f64::NAN);
                if x.is_nan() {
                    f64::NEG_INFINITY
                } else {
                    sign * x
                }
            })
            .collect();
        average_ranks(&v)
    };
    let score: Vec<f64> = metric_rank
        .iter()
        .zip(&param_rank)
        .map(|(m, p)| if use_params { m + p } else { *m })
        .collect();
    let mut order: Vec<usize> = (0..eligible.len()).collect();
    // Best first; ties keep the sampling order.
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));

    let mut ranking: Vec<RankingEntry> = Vec::with_capacity(rows.len());
    for (r, &j) in order.iter().enumerate() {
        let Row {
            c, params, flops, ..
        } = &rows[eligible[j]];
        ranking.push(RankingEntry {
            schema: SCHEMA_VERSION,
            rank: Some(r as u32 + 1),
            index: c.index,
            arch: c.arch.clone(),
            params: *params,
            flops: *flops,
            metric_rank: metric_rank[j],
            param_rank: param_rank[j],
            score: score[j],
            excluded: None,
        });
    }
    for Row {
        c,
        params,
        flops,
        excluded,
        ..
    } in rows.iter().filter(|r| r.excluded.is_some())
    {
        ranking.push(RankingEntry {
            schema: SCHEMA_VERSION,
            rank: None,
            index: c.index,
            arch: c.arch.clone(),
            params: *params,
            flops: *flops,
            metric_rank: f64::NAN,
            param_rank: f64::NAN,
            score: f64::NAN,
            excluded: excluded.clone(),
        });
    }
    let k = search.spec().selection.top_k;
    let topk = TopK {
        schema: SCHEMA_VERSION,
        metric: metric.to_string(),
        k,
        entries: ranking
            .iter()
            .take((k as usize).min(eligible.len()))
            .cloned()
            .collect(),
        seconds: Some(started.elapsed().as_secs_f64()),
    };
    search.put_jsonl(RANKING, &ranking)?;
    search.put_json(TOPK, &topk)?;
    search.mark_done(SUCCESS)?;

    let mut s = TerminationSummary::new(
        Stage::Select,
        None,
        Outcome::Succeeded,
        format!(
            "ranked {} eligible of {} candidates by {metric}{}; kept {}",
            eligible.len(),
            cands.len(),
            if use_params { " + #Param rank" } else { "" },
            topk.entries.len()
        ),
    );
    count_scored(&mut s, &records);
    s.top_k = topk
        .entries
        .iter()
        .map(|e| super::train::candidate_summary(e, None))
        .collect();
    s.errors = missing
        .iter()
        .map(|m| format!("score shard {m} did not finish; its candidates were left out"))
        .collect();
    s.artifacts = vec![RANKING.into(), TOPK.into(), SUCCESS.into()];
    Ok(s)
}

/// One candidate as `select` sees it.
struct Row<'a> {
    c: &'a CandidateRecord,
    /// Size of the network the winner is trained as (what the constraints bound).
    params: u64,
    flops: u64,
    /// The ranking metric's value.
    value: Option<MetricValue>,
    /// Why the candidate is not ranked.
    excluded: Option<String>,
    /// #Param of the scored network (the paper's #Param rank).
    scored_params: f64,
}

fn shard_of(index: usize, total: usize, shards: u32) -> u32 {
    (0..shards)
        .find(|&s| candidates::shard_range(total, s, shards).contains(&index))
        .unwrap_or(0)
}

/// A stored `angle_loss`, or the worst value for anything else.
fn as_angle(v: Option<MetricValue>) -> AngleLoss {
    match v {
        Some(MetricValue::AngleLoss(a)) => a,
        _ => AngleLoss {
            cos: f64::NAN,
            loss: f64::NAN,
            degenerate: true,
        },
    }
}

//! `evaluate`: the finalist with the best validation accuracy after its short training is trained
//! with `spec.evaluate`'s full recipe (checkpoints under `eval/checkpoints/`, resumed on retry)
//! and its top-1/top-5 error on the test split goes to `eval/report.json`.
use std::time::Instant;

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::records::{EvalReport, RankingEntry, TrainMetrics, SCHEMA_VERSION};

use super::train::{
    build_for, fit, history, load_topk, loss_curve, metrics_key, recipe_for_search, success_key,
};
use super::{schema_ok, DataShape, Search, StageError, StageResult};

use nas_api::layout::key::EVAL_CHECKPOINTS as CHECKPOINTS;
pub use nas_api::layout::key::{EVAL_REPORT as REPORT, EVAL_SUCCESS as SUCCESS};

/// The trained finalists (those whose training finished), best first: highest validation
/// accuracy, ties to the better search rank.
pub fn finalists(search: &Search) -> Result<Vec<(RankingEntry, TrainMetrics)>, StageError> {
    let topk = load_topk(search)?;
    let mut out = Vec::new();
    for e in topk.entries {
        if !search.done(&success_key(e.index))? {
            continue;
        }
        let m: TrainMetrics = search.get_json(&metrics_key(e.index))?;
        schema_ok("train metrics", m.schema)?;
        out.push((e, m));
    }
    out.sort_by(|a, b| {
        let acc = |m: &TrainMetrics| {
            if m.best_val_acc.is_nan() {
                f64::NEG_INFINITY
            } else {
                m.best_val_acc
            }
        };
        acc(&b.1)
            .total_cmp(&acc(&a.1))
            .then(a.0.rank.cmp(&b.0.rank))
    });
    Ok(out)
}

pub fn run(search: &Search) -> StageResult {
    search.ensure_spec()?;
    if search.done(SUCCESS)? {
        let r: EvalReport = search.get_json(REPORT)?;
        let mut s = super::skipped(Stage::Evaluate, None, "evaluation");
        s.best = Some(winner_summary(&r, None));
        return Ok(s);
    }
    let ranked = finalists(search)?;
    let Some((entry, short)) = ranked.first() else {
        return Err(StageError::undoable(
            "no finalist finished its training: nothing to evaluate",
        ));
    };
    let shape = DataShape::of(search)?;
    let builder = build_for(search, &entry.arch, &shape, &search.spec().evaluate)?;
    let recipe = recipe_for_search(&search.spec().evaluate, search)?;
    let started = Instant::now();
    let report = fit(
        search,
        builder.as_ref(),
        &recipe,
        CHECKPOINTS,
        "evaluate",
        None,
    )
    .map_err(|e| e.context(&format!("evaluating candidate {}", entry.index)))?;
    let test = report.test.clone().ok_or_else(|| {
        StageError::config("the staged data set has no test split to evaluate on")
    })?;
    let eval = EvalReport {
        schema: SCHEMA_VERSION,
        index: entry.index,
        arch: entry.arch.clone(),
        dataset: search.spec().dataset.source.clone(),
        epochs: recipe.epochs as u32,
        params: builder.param_count() as u64,
        flops: builder.flops() as u64,
        top1_err: 1.0 - test.top1,
        top5_err: 1.0 - test.top5,
        history: history(&report),
        loss_curve: loss_curve(&report),
        seconds: started.elapsed().as_secs_f64(),
    };
    search.put_json(REPORT, &eval)?;
    search.mark_done(SUCCESS)?;
    let mut s = TerminationSummary::new(
        Stage::Evaluate,
        None,
        Outcome::Succeeded,
        format!(
            "candidate {}: top-1 error {:.2}%, top-5 error {:.2}% after {} epochs",
            entry.index,
            100.0 * eval.top1_err,
            100.0 * eval.top5_err,
            eval.epochs
        ),
    );
    s.best = Some(winner_summary(&eval, Some(short.best_val_acc)));
    s.values.insert("seconds".into(), eval.seconds);
    s.artifacts = vec![REPORT.into(), SUCCESS.into()];
    Ok(s)
}

/// The winner as the status shows it (percent).
pub(crate) fn winner_summary(
    r: &EvalReport,
    val_acc: Option<f64>,
) -> nas_api::crd::CandidateSummary {
    nas_api::crd::CandidateSummary {
        val_accuracy: super::percent(val_acc),
        top1_error: super::percent(Some(r.top1_err)),
        top5_error: super::percent(Some(r.top5_err)),
        ..super::status_candidate(r.index, &r.arch, r.params, r.flops)
    }
}

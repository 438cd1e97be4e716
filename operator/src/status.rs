//! Building the bounded status: conditions with transition times, stage progress, and the
//! results the runner pods report (candidates scored, top-K, best, results URI).
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use nas_api::contract::Stage;
use nas_api::crd::{
    CandidateSummary, NASSearchStatus, StageState, StageStatus, ARCH_MAX_CHARS, STATUS_TOP_K_MAX,
};

use crate::observed::ObservedJob;
use crate::reason::Reason;
use crate::termination::truncate;

/// Longest condition message kept.
pub const MESSAGE_MAX: usize = 1024;

/// Sets condition `type_`, keeping its transition time when its status does not change.
pub fn set_condition(
    status: &mut NASSearchStatus,
    type_: &str,
    value: bool,
    reason: &Reason,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let value = if value { "True" } else { "False" };
    let message = truncate(message, MESSAGE_MAX);
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = now.clone();
                c.status = value.into();
            }
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => status.conditions.push(Condition {
            type_: type_.into(),
            status: value.into(),
            reason: reason.to_string(),
            message,
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
}

/// The entry of `stage`, created (Pending) if absent; entries stay in pipeline order.
pub fn stage_entry(status: &mut NASSearchStatus, stage: Stage) -> &mut StageStatus {
    if let Some(i) = status.stages.iter().position(|s| s.stage == stage) {
        return &mut status.stages[i];
    }
    status.stages.push(StageStatus::new(stage));
    status.stages.sort_by_key(|s| s.stage);
    let i = status
        .stages
        .iter()
        .position(|s| s.stage == stage)
        .unwrap_or(0);
    &mut status.stages[i]
}

/// Copies a Job's progress into its stage entry.
pub fn record_progress(entry: &mut StageStatus, job: &ObservedJob, state: StageState) {
    entry.state = state;
    entry.job_name = Some(job.name.clone());
    entry.total = job.total;
    entry.succeeded = job.succeeded;
    entry.failed = job.failed;
    entry.active = job.active;
    entry.start_time = job.start_time.clone();
    if matches!(state, StageState::Succeeded | StageState::Failed) {
        entry.completion_time = job.completion_time.clone();
    }
}

fn bounded(mut c: CandidateSummary) -> CandidateSummary {
    c.arch = truncate(&c.arch, ARCH_MAX_CHARS);
    c
}

/// Folds the runner pods' summaries of `stage` into the status.
pub fn absorb(status: &mut NASSearchStatus, stage: Stage, job: &ObservedJob) {
    match stage {
        Stage::StageData => {}
        Stage::Score => {
            // A Job removed by its TTL may be seen with only some of its pods: never count down
            // (a restart starts from an empty status).
            let scored: u64 = job.summaries.iter().filter_map(|s| s.scored).sum();
            if scored > 0 || !job.summaries.is_empty() {
                status.candidates_scored = Some(status.candidates_scored.unwrap_or(0).max(scored));
            }
        }
        Stage::Select => {
            // Select counts every finished shard: its number is the search's.
            if let Some(n) = job.summaries.iter().find_map(|s| s.scored) {
                status.candidates_scored = Some(n);
            }
            if let Some(s) = job.summaries.iter().find(|s| !s.top_k.is_empty()) {
                status.top_k = s
                    .top_k
                    .iter()
                    .take(STATUS_TOP_K_MAX)
                    .cloned()
                    .map(bounded)
                    .collect();
                status.best = status.top_k.first().cloned();
            }
        }
        Stage::Train => {
            // Each index reports its trained candidate; fill in the top-K entries.
            for c in job.summaries.iter().filter_map(|s| s.best.as_ref()) {
                let slot = status.top_k.iter().position(|t| {
                    (c.index.is_some() && t.index == c.index)
                        || (!c.arch.is_empty() && t.arch == c.arch)
                });
                match slot {
                    Some(i) => status.top_k[i].val_accuracy = c.val_accuracy,
                    None if status.top_k.len() < STATUS_TOP_K_MAX => {
                        status.top_k.push(bounded(c.clone()))
                    }
                    None => {}
                }
            }
            let best = status
                .top_k
                .iter()
                .filter(|t| t.val_accuracy.is_some())
                .max_by(|a, b| {
                    a.val_accuracy
                        .partial_cmp(&b.val_accuracy)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            if let Some(b) = best {
                status.best = Some(b.clone());
            }
        }
        Stage::Evaluate => {
            if let Some(c) = job.summaries.iter().find_map(|s| s.best.clone()) {
                let mut best = status.best.take().unwrap_or_default();
                if best.arch.is_empty() || best.arch == c.arch {
                    best = CandidateSummary {
                        val_accuracy: best.val_accuracy.or(c.val_accuracy),
                        ..bounded(c)
                    };
                } else {
                    best.top1_error = c.top1_error;
                    best.top5_error = c.top5_error;
                }
                status.best = Some(best);
            }
        }
        Stage::Report => {
            if let Some(u) = job.summaries.iter().find_map(|s| s.results_uri.clone()) {
                status.results_uri = Some(truncate(&u, 1024));
            }
        }
    }
}

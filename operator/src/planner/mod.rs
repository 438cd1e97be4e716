//! The pure planner: `(search, observed Jobs, now) -> actions`. No IO; the reconcile shell
//! carries the actions out. Everything durable lives in the status (the Jobs may be deleted by
//! their TTL), so a restarted operator plans from the status and whatever Jobs remain.
//!
//! Transitions: fresh (start stage-data), stage done (start the next), index failed (the Job
//! retries it; an event), too many indexes failed or the Job failed (search Failed), spec
//! changed (delete the old hash's Jobs, restart), suspended / resumed (patch the Job's
//! `suspend` unless Kueue owns it), deleted (optional artifact cleanup behind a finalizer),
//! invalid spec (Accepted=False naming the field, no requeue).
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nas_api::contract::Stage;
use nas_api::crd::{condition, NASSearch, NASSearchStatus, Phase, StageState};
use nas_api::resolved::{ResolveError, ResolvedSpec};

use crate::jobs::{self, JobKind};
use crate::observed::{JobOutcome, ObservedJob, PodProblem};
use crate::reason::{JobFailure, Reason};
use crate::status::{absorb, record_progress, set_condition, stage_entry};

mod deletion;
mod invalid;

use deletion::plan_deletion;
use invalid::plan_invalid;
pub use invalid::{plan_unreadable, Unreadable};

/// Finalizer that holds a search until its artifacts are deleted.
pub const FINALIZER: &str = "nas.example.dev/delete-artifacts";
/// Periodic re-check of a running search (Job events normally trigger reconciles sooner).
pub const RESYNC: Duration = Duration::from_secs(300);
/// Re-check of a running stage with pods not started yet (their status reaches no watch).
pub const PENDING_RECHECK: Duration = Duration::from_secs(10);

/// An event to publish on the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// Warning (true) or Normal.
    pub warning: bool,
    pub reason: Reason,
    /// Human-readable note.
    pub note: String,
}

/// One thing the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Add [`FINALIZER`] to the search.
    AddFinalizer,
    /// Remove [`FINALIZER`] from the search.
    RemoveFinalizer,
    /// Server-side apply the resolved-spec ConfigMap.
    ApplyConfigMap(Box<ConfigMap>),
    /// Server-side apply (create) a Job.
    ApplyJob(Box<Job>),
    /// Server-side apply the cleanup Job's ConfigMap, owned by that Job (named here; its UID is
    /// read from the API server).
    ApplyCleanupConfigMap {
        /// The Job, and the ConfigMap's name.
        job: String,
        /// The resolved spec it holds.
        resolved: Box<ResolvedSpec>,
    },
    /// Delete a Job and its pods.
    DeleteJob(String),
    /// Set `spec.suspend` of a Job the operator owns the suspension of.
    SuspendJob { name: String, suspend: bool },
    /// Publish an event.
    Event(EventSpec),
    /// Replace the status.
    PatchStatus(Box<NASSearchStatus>),
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// When to look again without an event (`None`: only on change).
    pub requeue: Option<Duration>,
    /// Stages that finished in this plan, with their duration in seconds (for metrics).
    pub finished_stages: Vec<(Stage, f64)>,
}

impl Plan {
    fn event(&mut self, warning: bool, reason: Reason, note: impl Into<String>) {
        self.actions.push(Action::Event(EventSpec {
            warning,
            reason,
            note: note.into(),
        }));
    }
}

fn has_finalizer(search: &NASSearch) -> bool {
    search
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

/// Plans the next actions for `search` given its Jobs.
pub fn plan(search: &NASSearch, jobs: &[ObservedJob], now: &Time) -> Plan {
    let mut p = Plan::default();
    if search.metadata.deletion_timestamp.is_some() {
        plan_deletion(search, jobs, &mut p);
        return p;
    }
    let wants_finalizer = search.spec.delete_artifacts_on_deletion;
    match (wants_finalizer, has_finalizer(search)) {
        (true, false) => p.actions.push(Action::AddFinalizer),
        (false, true) => p.actions.push(Action::RemoveFinalizer),
        _ => {}
    }

    let old = search.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let generation = search.metadata.generation;
    st.observed_generation = generation;

    let mut resolved = match ResolvedSpec::from_search(search) {
        Ok(r) => r,
        Err(e) => {
            let msg = match &e {
                ResolveError::Invalid(errs) => nas_api::validate::describe(errs),
                other => other.to_string(),
            };
            plan_invalid(&old, generation, &msg, now, &mut p);
            return p;
        }
    };
    // Work recorded under an older form of this spec's hash is this spec's work.
    resolved.adopt_hash(old.spec_hash.as_deref());
    let hash = resolved.spec_hash.clone();
    set_condition(
        &mut st,
        condition::ACCEPTED,
        true,
        &Reason::Valid,
        "the spec is valid",
        generation,
        now,
    );
    st.artifacts_uri = Some(resolved.artifacts_root.clone());

    if st.spec_hash.as_deref() != Some(hash.as_str()) {
        if st.spec_hash.is_some() {
            p.event(
                false,
                Reason::SpecChanged,
                format!("spec hash {hash}: restarting the pipeline"),
            );
        }
        st = NASSearchStatus {
            observed_generation: generation,
            conditions: std::mem::take(&mut st.conditions),
            spec_hash: Some(hash.clone()),
            artifacts_uri: st.artifacts_uri.take(),
            ..Default::default()
        };
        st.conditions.retain(|c| c.type_ == condition::ACCEPTED);
    }

    // Jobs of another spec hash belong to an abandoned pipeline.
    for j in jobs {
        if matches!(j.kind, Some(JobKind::Stage(_)))
            && j.spec_hash.as_deref() != Some(hash.as_str())
        {
            p.actions.push(Action::DeleteJob(j.name.clone()));
        }
    }
    let kueue = search.spec.queue_name.is_some();
    let suspend = search.spec.suspend;
    let Walk {
        failed,
        running,
        stuck,
        pending,
    } = walk_stages(search, &resolved, jobs, &mut st, &mut p);

    // Checked after the walk: the last stage may have finished in this very pass.
    let all_done = failed.is_none()
        && Stage::ALL
            .iter()
            .all(|s| old_state(&st, *s) == StageState::Succeeded);
    let stage = st.stage.map_or("", |s| s.as_str());
    let verdict = match failed {
        Some(msg) => Verdict::Failed(msg),
        None if all_done => Verdict::Succeeded,
        None if suspend => Verdict::Suspended(match (running, kueue) {
            (true, true) => {
                format!("no new stage starts; the running stage {stage} is managed by Kueue")
            }
            (true, false) => format!("stage {stage} is suspended"),
            (false, _) => format!("stage {stage} will start when resumed"),
        }),
        None => {
            let (reason, msg) = progress(stage, stuck.as_ref());
            Verdict::Running(reason, msg)
        }
    };
    match &verdict {
        Verdict::Succeeded => {
            st.stage = Some(Stage::Report);
            if st.results_uri.is_none() {
                st.results_uri = Some(format!("{}summary.json", resolved.artifacts_root));
            }
            let again = old.spec_hash.as_deref() != Some(hash.as_str());
            if !old.is_true(condition::SUCCEEDED) || again {
                let at = st.results_uri.clone().unwrap_or_default();
                p.event(false, Reason::Succeeded, format!("results at {at}"));
            }
        }
        Verdict::Running(reason, msg) => {
            let said = old
                .condition(condition::PROGRESSING)
                .map(|c| c.message.as_str());
            if stuck.is_some() && said != Some(msg.as_str()) {
                p.event(true, reason.clone(), msg.clone());
            }
        }
        Verdict::Failed(_) | Verdict::Suspended(_) => {}
    }
    if matches!(verdict, Verdict::Running(..) | Verdict::Suspended(_)) {
        p.requeue = Some(if pending { PENDING_RECHECK } else { RESYNC });
    }
    st.phase = verdict.phase();
    let was_suspended = st.condition(condition::SUSPENDED).is_some();
    for (type_, value, reason, msg) in verdict.conditions(was_suspended) {
        set_condition(&mut st, type_, value, &reason, &msg, generation, now);
    }
    if st != old {
        p.actions.push(Action::PatchStatus(Box::new(st)));
    }
    p
}

/// What the walk over the stages found.
#[derive(Default)]
struct Walk {
    /// A stage failed: why.
    failed: Option<String>,
    /// A stage runs or was just started.
    running: bool,
    /// The running stage's first pod that is not starting.
    stuck: Option<PodProblem>,
    /// Some pod of the running stage has not started yet.
    pending: bool,
}

/// Walks the stages in order: records the finished ones, starts the first not started (unless
/// suspended), follows the running one (its progress, failed indexes, suspension), and stops
/// at a failure.
fn walk_stages(
    search: &NASSearch,
    resolved: &ResolvedSpec,
    jobs: &[ObservedJob],
    st: &mut NASSearchStatus,
    p: &mut Plan,
) -> Walk {
    let current = |stage: Stage| {
        jobs.iter().find(|j| {
            j.kind == Some(JobKind::Stage(stage))
                && j.spec_hash.as_deref() == Some(resolved.spec_hash.as_str())
        })
    };

    let kueue = search.spec.queue_name.is_some();
    let suspend = search.spec.suspend;
    let mut w = Walk::default();
    for stage in Stage::ALL {
        let recorded = old_state(st, stage);
        if recorded == StageState::Succeeded {
            continue;
        }
        if recorded == StageState::Failed {
            w.failed = Some(failed_message(st, stage));
            break;
        }
        st.stage = Some(stage);
        let kind = JobKind::Stage(stage);
        let Some(job) = current(stage) else {
            if suspend {
                break;
            }
            // Start the stage (again, if its Job vanished before it was seen to finish).
            let job = jobs::build_job(search, resolved, kind);
            let entry = stage_entry(st, stage);
            entry.state = StageState::Running;
            entry.job_name = job.metadata.name.clone();
            entry.total = jobs::completions(resolved, kind);
            p.actions
                .push(Action::ApplyConfigMap(Box::new(jobs::spec_configmap(
                    search, resolved,
                ))));
            p.actions.push(Action::ApplyJob(Box::new(job)));
            p.event(
                false,
                Reason::StageStarted,
                format!("stage {} started", stage.as_str()),
            );
            w.running = true;
            break;
        };
        match &job.outcome {
            JobOutcome::Running => {
                let prev_failed = st.stage_status(stage).map_or(0, |s| s.failed);
                record_progress(stage_entry(st, stage), job, StageState::Running);
                absorb(st, stage, job);
                if job.failed > prev_failed {
                    p.event(
                        true,
                        Reason::IndexFailed,
                        format!(
                            "stage {}: {} index(es) failed so far{}",
                            stage.as_str(),
                            job.failed,
                            first_message(job)
                        ),
                    );
                }
                if !kueue && job.suspended != suspend {
                    p.actions.push(Action::SuspendJob {
                        name: job.name.clone(),
                        suspend,
                    });
                    p.event(
                        false,
                        if suspend {
                            Reason::Suspended
                        } else {
                            Reason::Resumed
                        },
                        format!("Job {}", job.name),
                    );
                }
                w.running = true;
                w.stuck = job.stuck.first().cloned();
                w.pending = job.pending > 0;
                break;
            }
            JobOutcome::Complete => {
                finish_stage(st, p, stage, job, false);
            }
            JobOutcome::Failed { reason, message } => {
                let tolerated = jobs::tolerated_failed_indexes(resolved, kind);
                let partial = kind.indexed()
                    && *reason == JobFailure::FailedIndexes
                    && job.succeeded > 0
                    && job.failed <= tolerated;
                if partial {
                    finish_stage(st, p, stage, job, true);
                    continue;
                }
                record_progress(stage_entry(st, stage), job, StageState::Failed);
                let msg = format!(
                    "stage {}: Job {} failed ({reason}): {message}{}",
                    stage.as_str(),
                    job.name,
                    first_message(job)
                );
                p.event(true, Reason::StageFailed, msg.clone());
                w.failed = Some(msg);
                break;
            }
        }
    }
    w
}

/// The Progressing condition's reason and message while `stage` runs: the stage, or the pod
/// that is not starting and why.
fn progress(stage: &str, stuck: Option<&PodProblem>) -> (Reason, String) {
    match stuck {
        None => (Reason::StageRunning, format!("stage {stage} is running")),
        Some(pp) => (
            Reason::of_pod(&pp.reason),
            format!(
                "stage {stage}: pod {} is {}: {}",
                pp.pod, pp.reason, pp.message
            ),
        ),
    }
}

/// Where the search stands after a pass; its phase and conditions follow from it alone.
enum Verdict {
    /// A stage failed: the message says which and why.
    Failed(String),
    Succeeded,
    /// `spec.suspend`: the message says what is held.
    Suspended(String),
    /// A stage runs (or is about to): the Progressing reason and message.
    Running(Reason, String),
}

/// A condition to set: type, value, reason, message.
type ConditionRow = (&'static str, bool, Reason, String);

impl Verdict {
    fn phase(&self) -> Phase {
        match self {
            Verdict::Failed(_) => Phase::Failed,
            Verdict::Succeeded => Phase::Succeeded,
            Verdict::Suspended(_) => Phase::Suspended,
            Verdict::Running(..) => Phase::Running,
        }
    }

    /// The conditions this verdict sets, as a table (`Suspended` is set back to False on a
    /// run only when it was ever set).
    fn conditions(&self, was_suspended: bool) -> Vec<ConditionRow> {
        use condition::{FAILED, PROGRESSING, SUCCEEDED, SUSPENDED};
        let row = |t, v, r: Reason, m: &str| (t, v, r, m.to_string());
        let unfinished = [
            row(
                SUCCEEDED,
                false,
                Reason::InProgress,
                "the search has not finished",
            ),
            row(FAILED, false, Reason::InProgress, "no stage failed"),
        ];
        match self {
            Verdict::Failed(msg) => vec![
                row(FAILED, true, Reason::StageFailed, msg),
                row(PROGRESSING, false, Reason::StageFailed, "the search failed"),
                row(SUCCEEDED, false, Reason::StageFailed, "the search failed"),
            ],
            Verdict::Succeeded => {
                let done = "every stage succeeded";
                vec![
                    row(SUCCEEDED, true, Reason::AllStagesDone, done),
                    row(PROGRESSING, false, Reason::AllStagesDone, done),
                    row(FAILED, false, Reason::AllStagesDone, done),
                ]
            }
            Verdict::Suspended(msg) => {
                let mut rows = vec![
                    row(SUSPENDED, true, Reason::SuspendRequested, msg),
                    row(PROGRESSING, false, Reason::Suspended, msg),
                ];
                rows.extend(unfinished);
                rows
            }
            Verdict::Running(reason, msg) => {
                let mut rows = Vec::new();
                if was_suspended {
                    rows.push(row(SUSPENDED, false, Reason::Resumed, "the search runs"));
                }
                rows.push(row(PROGRESSING, true, reason.clone(), msg));
                rows.extend(unfinished);
                rows
            }
        }
    }
}

fn old_state(st: &NASSearchStatus, stage: Stage) -> StageState {
    st.stage_status(stage)
        .map_or(StageState::Pending, |s| s.state)
}

fn failed_message(st: &NASSearchStatus, stage: Stage) -> String {
    st.condition(condition::FAILED)
        .filter(|c| c.status == "True")
        .map_or_else(
            || format!("stage {} failed", stage.as_str()),
            |c| c.message.clone(),
        )
}

fn first_message(job: &ObservedJob) -> String {
    job.failure_messages
        .first()
        .map(|m| format!("; runner: {m}"))
        .unwrap_or_default()
}

fn finish_stage(
    st: &mut NASSearchStatus,
    p: &mut Plan,
    stage: Stage,
    job: &ObservedJob,
    partial: bool,
) {
    record_progress(stage_entry(st, stage), job, StageState::Succeeded);
    absorb(st, stage, job);
    if let (Some(a), Some(b)) = (&job.start_time, &job.completion_time) {
        let secs = b.0.duration_since(a.0).as_secs_f64();
        p.finished_stages.push((stage, secs.max(0.0)));
    }
    if partial {
        p.event(
            true,
            Reason::StagePartiallySucceeded,
            format!(
                "stage {}: {} of {} indexes failed (tolerated); going on with the rest",
                stage.as_str(),
                job.failed,
                job.total
            ),
        );
    } else {
        p.event(
            false,
            Reason::StageSucceeded,
            format!("stage {} succeeded", stage.as_str()),
        );
    }
}

//! What the planner sees of a search's Jobs: state, counts and the pods' termination summaries,
//! reduced from the Kubernetes objects so that the planner stays pure and testable.
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::jobs::{JobKind, LABEL_SPEC_HASH, LABEL_STAGE, RUNNER_CONTAINER};
use crate::reason::JobFailure;
use crate::termination::{self, StageSummary, TerminationMessage};

/// How a Job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Not finished (running, pending or suspended).
    Running,
    /// Condition `Complete`.
    Complete,
    /// Condition `Failed`, with the Job's reason (`BackoffLimitExceeded`, `FailedIndexes`,
    /// `MaxFailedIndexesExceeded`, `PodFailurePolicy`, `DeadlineExceeded`) and message.
    Failed { reason: JobFailure, message: String },
}

/// A pod of a Job that is not starting, as its status says (the kubelet's Waiting reason, or
/// the scheduler's `Unschedulable`).
#[derive(Debug, Clone, PartialEq)]
pub struct PodProblem {
    /// Pod name.
    pub pod: String,
    /// `ImagePullBackOff`, `CreateContainerConfigError`, `Unschedulable`, ...
    pub reason: String,
    /// What the kubelet or scheduler said (bounded).
    pub message: String,
}

/// Waiting reasons that do not clear by themselves (ContainerCreating and PodInitializing do).
const STUCK_REASONS: [&str; 7] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
];

/// Longest kubelet or scheduler message kept of a pod that is not starting (bytes): with the
/// stage and pod names it stays well within a condition message and an event note.
const PROBLEM_MESSAGE_MAX: usize = 300;

/// Why `pod` is not starting, if it is stuck.
fn pod_problem(pod: &Pod) -> Option<PodProblem> {
    let status = pod.status.as_ref()?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == RUNNER_CONTAINER)
        .and_then(|c| c.state.as_ref()?.waiting.as_ref());
    if let Some(w) = waiting {
        let reason = w.reason.clone().unwrap_or_default();
        if STUCK_REASONS.contains(&reason.as_str()) {
            let message = termination::truncate(
                w.message.as_deref().unwrap_or_default(),
                PROBLEM_MESSAGE_MAX,
            );
            return Some(PodProblem {
                pod: name,
                reason,
                message,
            });
        }
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    })?;
    Some(PodProblem {
        pod: name,
        reason: "Unschedulable".into(),
        message: termination::truncate(
            unschedulable.message.as_deref().unwrap_or_default(),
            PROBLEM_MESSAGE_MAX,
        ),
    })
}

/// One Job of a search, as the planner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedJob {
    /// Job name.
    pub name: String,
    /// Stage or cleanup, from the stage label (`None`: not ours to plan for).
    pub kind: Option<JobKind>,
    /// Spec hash label.
    pub spec_hash: Option<String>,
    /// Finished or not.
    pub outcome: JobOutcome,
    /// `spec.suspend`.
    pub suspended: bool,
    /// Indexes (pods) needed.
    pub total: i32,
    /// Indexes (pods) succeeded.
    pub succeeded: i32,
    /// Indexes (pods) failed.
    pub failed: i32,
    /// Pods running.
    pub active: i32,
    /// `status.startTime`.
    pub start_time: Option<Time>,
    /// `status.completionTime`, or the time of the Failed condition.
    pub completion_time: Option<Time>,
    /// Summaries of pods that ended, one per index (the latest pod of each index).
    pub summaries: Vec<StageSummary>,
    /// Free-text termination messages of failed pods (bounded).
    pub failure_messages: Vec<String>,
    /// Pods that are not starting (at most 3).
    pub stuck: Vec<PodProblem>,
    /// Pods not started yet (phase Pending): pod status changes reach no watch of the
    /// operator's, so the planner looks again soon while there are any.
    pub pending: usize,
}

fn count_indexes(ranges: &str) -> i32 {
    // "1,3-5,7" -> 5
    ranges
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('-') {
            Some((a, b)) => match (a.parse::<i32>(), b.parse::<i32>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => i32::from(p.parse::<i32>().is_ok()),
        })
        .sum()
}

impl ObservedJob {
    /// Reduces a Job and its pods (any pods; those of other Jobs are ignored).
    pub fn from_job(job: &Job, pods: &[Pod]) -> Self {
        let name = job.metadata.name.clone().unwrap_or_default();
        let labels = job.metadata.labels.clone().unwrap_or_default();
        let spec = job.spec.clone().unwrap_or_default();
        let status = job.status.clone().unwrap_or_default();
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let cond = |t: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == t && c.status == "True")
                .cloned()
        };
        let (outcome, finished_at) = if let Some(c) = cond("Complete") {
            (
                JobOutcome::Complete,
                status.completion_time.clone().or(c.last_transition_time),
            )
        } else if let Some(c) = cond("Failed") {
            let outcome = JobOutcome::Failed {
                reason: JobFailure::from(c.reason.as_deref().unwrap_or_default()),
                message: termination::truncate(c.message.as_deref().unwrap_or_default(), 512),
            };
            (outcome, c.last_transition_time)
        } else {
            (JobOutcome::Running, None)
        };
        let (succeeded, failed) = if indexed {
            (
                count_indexes(status.completed_indexes.as_deref().unwrap_or_default()),
                count_indexes(status.failed_indexes.as_deref().unwrap_or_default()),
            )
        } else {
            (status.succeeded.unwrap_or(0), status.failed.unwrap_or(0))
        };

        // The latest ended pod of each index carries that index's summary.
        let mut latest: BTreeMap<String, (&Pod, Option<Time>)> = BTreeMap::new();
        let mut failure_messages = Vec::new();
        let (mut stuck, mut pending) = (Vec::new(), 0);
        // By the Job's UID, not its name: pods of a deleted Job of the same name linger through
        // their grace period (a spec changed and changed back, a re-created search).
        let uid = job.metadata.uid.as_deref();
        for pod in pods {
            let pl = pod.metadata.labels.clone().unwrap_or_default();
            let owner = pl
                .get("batch.kubernetes.io/controller-uid")
                .or_else(|| pl.get("controller-uid"));
            if uid.is_none() || owner.map(String::as_str) != uid {
                continue;
            }
            let Some(term) = runner_terminated(pod) else {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if phase.is_none_or(|p| p == "Pending") && pod.metadata.deletion_timestamp.is_none()
                {
                    pending += 1;
                    if let Some(problem) = pod_problem(pod).filter(|_| stuck.len() < 3) {
                        stuck.push(problem);
                    }
                }
                continue;
            };
            if term.exit_code != 0 {
                if let Some(m) = term.message.as_deref().filter(|m| !m.trim().is_empty()) {
                    let text = match termination::parse(m) {
                        TerminationMessage::Summary(s) => s.error.unwrap_or_default(),
                        TerminationMessage::Text(t) => t,
                    };
                    if !text.is_empty() && failure_messages.len() < 3 {
                        failure_messages.push(termination::truncate(&text, 512));
                    }
                }
                continue;
            }
            let index = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
                .cloned()
                .or_else(|| pl.get("batch.kubernetes.io/job-completion-index").cloned())
                .unwrap_or_default();
            let at = term.finished_at.clone();
            let newer = latest.get(&index).is_none_or(|(_, t)| at > *t);
            if newer {
                latest.insert(index, (pod, at));
            }
        }
        let summaries = latest
            .values()
            .filter_map(|(pod, _)| runner_terminated(pod)?.message.clone())
            .filter_map(|m| match termination::parse(&m) {
                TerminationMessage::Summary(s) => Some(*s),
                TerminationMessage::Text(_) => None,
            })
            .collect();

        ObservedJob {
            name,
            kind: labels.get(LABEL_STAGE).and_then(|s| JobKind::parse(s)),
            spec_hash: labels.get(LABEL_SPEC_HASH).cloned(),
            outcome,
            suspended: spec.suspend.unwrap_or(false),
            total: spec.completions.unwrap_or(1),
            succeeded,
            failed,
            active: status.active.unwrap_or(0),
            start_time: status.start_time.clone(),
            completion_time: finished_at,
            summaries,
            failure_messages,
            stuck,
            pending,
        }
    }
}

fn runner_terminated(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == RUNNER_CONTAINER)?
        .state
        .as_ref()?
        .terminated
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_and_pod(job_uid: &str, pod_uid_label: &str) -> (Job, Pod) {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s-score-1", "uid": job_uid},
            "spec": {"completions": 1, "completionMode": "Indexed", "template": {}},
            "status": {"completedIndexes": "0"},
        }))
        .unwrap();
        let summary = "injected failure";
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s-score-1-0-abc", "labels": {
                "batch.kubernetes.io/job-name": "s-score-1",
                "batch.kubernetes.io/controller-uid": pod_uid_label},
                "annotations": {"batch.kubernetes.io/job-completion-index": "0"}},
            "status": {"containerStatuses": [{"name": RUNNER_CONTAINER, "image": "", "imageID": "",
                "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1,
                "message": summary, "finishedAt": "2026-01-01T00:00:00Z"}}}]},
        }))
        .unwrap();
        (job, pod)
    }

    #[test]
    fn pods_belong_to_a_job_by_its_uid_not_its_name() {
        let (job, pod) = job_and_pod("uid-new", "uid-old");
        assert!(ObservedJob::from_job(&job, &[pod])
            .failure_messages
            .is_empty());
        let (job, pod) = job_and_pod("uid-new", "uid-new");
        assert_eq!(
            ObservedJob::from_job(&job, &[pod]).failure_messages.len(),
            1
        );
    }

    #[test]
    fn counts_index_ranges() {
        assert_eq!(count_indexes(""), 0);
        assert_eq!(count_indexes("0"), 1);
        assert_eq!(count_indexes("1,3-5,7"), 5);
        assert_eq!(count_indexes("0-9"), 10);
    }
}

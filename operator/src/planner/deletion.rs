//! A deleted search: let go at once, or first delete its artifacts through a cleanup Job
//! behind the finalizer.
use nas_api::crd::NASSearch;
use nas_api::resolved::ResolvedSpec;

use crate::reason::Reason;

use super::{has_finalizer, Action, Plan, PENDING_RECHECK};
use crate::jobs::{self, JobKind};
use crate::observed::{JobOutcome, ObservedJob};

pub(super) fn plan_deletion(search: &NASSearch, jobs: &[ObservedJob], p: &mut Plan) {
    if !has_finalizer(search) {
        return; // Owner references let the garbage collector delete the Jobs.
    }
    if !search.spec.delete_artifacts_on_deletion {
        p.actions.push(Action::RemoveFinalizer);
        return;
    }
    let resolved = match ResolvedSpec::from_search(search) {
        Ok(r) => r,
        Err(e) => {
            p.event(
                true,
                Reason::CleanupSkipped,
                format!("cannot delete artifacts: {e}"),
            );
            p.actions.push(Action::RemoveFinalizer);
            return;
        }
    };
    // The Job first, then its ConfigMap, which it owns (the pod waits for the mount meanwhile).
    let configmap = |job: &str| Action::ApplyCleanupConfigMap {
        job: job.to_string(),
        resolved: Box::new(resolved.clone()),
    };
    match jobs.iter().find(|j| j.kind == Some(JobKind::Cleanup)) {
        None => {
            let job = jobs::build_job(search, &resolved, JobKind::Cleanup);
            let name = job.metadata.name.clone().unwrap_or_default();
            p.actions.push(Action::ApplyJob(Box::new(job)));
            p.actions.push(configmap(&name));
            p.event(
                false,
                Reason::CleanupStarted,
                format!("deleting artifacts under {}", resolved.artifacts_root),
            );
            // The search does not own the cleanup Job, so its changes reach no watch: look again.
            p.requeue = Some(PENDING_RECHECK);
        }
        Some(j) => match &j.outcome {
            JobOutcome::Running => {
                // Again, in case the operator stopped between the Job and its ConfigMap.
                p.actions.push(configmap(&j.name));
                p.requeue = Some(PENDING_RECHECK);
            }
            JobOutcome::Complete => p.actions.push(Action::RemoveFinalizer),
            JobOutcome::Failed { reason, message } => {
                // Never hold the resource forever: report and let go.
                p.event(
                    true,
                    Reason::CleanupFailed,
                    format!(
                        "artifacts under {} may remain: {reason}: {message}",
                        resolved.artifacts_root
                    ),
                );
                p.actions.push(Action::RemoveFinalizer);
            }
        },
    }
}

//! The planner's transitions: fresh, stage done, index failed and retried, too many indexes
//! failed, spec changed, suspended, resumed, deleted, invalid spec, finished.
mod common;

use common::*;
use k8s_openapi::api::batch::v1::Job;
use nas_api::contract::Stage;
use nas_api::crd::{condition, NASSearch, NASSearchStatus, Phase, StageState};
use nas_operator::jobs::{JobKind, LABEL_KUEUE_QUEUE};
use nas_operator::observed::{JobOutcome, ObservedJob};
use nas_operator::planner::{plan, Action, Plan, FINALIZER};

fn jobs_applied(p: &Plan) -> Vec<&Job> {
    p.actions
        .iter()
        .filter_map(|a| {
            if let Action::ApplyJob(j) = a {
                Some(j.as_ref())
            } else {
                None
            }
        })
        .collect()
}

fn events(p: &Plan) -> Vec<(bool, &str)> {
    p.actions
        .iter()
        .filter_map(|a| {
            if let Action::Event(e) = a {
                Some((e.warning, e.reason.as_str()))
            } else {
                None
            }
        })
        .collect()
}

fn status(p: &Plan) -> &NASSearchStatus {
    p.actions
        .iter()
        .find_map(|a| {
            if let Action::PatchStatus(s) = a {
                Some(s.as_ref())
            } else {
                None
            }
        })
        .expect("the plan patches the status")
}

fn stage_label(j: &Job) -> &str {
    j.metadata.labels.as_ref().unwrap()["nas.example.dev/stage"].as_str()
}

/// Plans, then feeds the new status back: what the next reconcile would see.
fn step(search: &mut NASSearch, jobs: &[ObservedJob]) -> Plan {
    let p = plan(search, jobs, &now());
    if let Some(Action::PatchStatus(s)) = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::PatchStatus(_)))
    {
        search.status = Some((**s).clone());
    }
    p
}

#[test]
fn fresh_search_starts_stage_data() {
    let mut s = search();
    let p = step(&mut s, &[]);
    let applied = jobs_applied(&p);
    assert_eq!(applied.len(), 1);
    assert_eq!(stage_label(applied[0]), "stage-data");
    // The ConfigMap the Job mounts comes first.
    assert!(matches!(p.actions[0], Action::ApplyConfigMap(_)));
    assert_eq!(events(&p), [(false, "StageStarted")]);
    let st = status(&p);
    assert_eq!(st.phase, Phase::Running);
    assert_eq!(st.stage, Some(Stage::StageData));
    assert!(st.is_true(condition::ACCEPTED));
    assert!(st.is_true(condition::PROGRESSING));
    assert!(!st.is_true(condition::SUCCEEDED));
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.spec_hash.as_deref(), Some(hash(&s).as_str()));
    assert_eq!(
        st.artifacts_uri.as_deref(),
        Some("s3://b/nas/team/s1/uid-1/")
    );
    assert!(p.requeue.is_some());

    // The same world again: nothing new to do (no hot loop, no duplicate events).
    let running = job(&s, Stage::StageData, JobOutcome::Running);
    let _ = step(&mut s, std::slice::from_ref(&running));
    let again = plan(&s, &[running], &now());
    assert!(again.actions.is_empty(), "{:?}", again.actions);
}

#[test]
fn stage_done_starts_the_next_stage() {
    let mut s = search();
    step(&mut s, &[]);
    let done = job(&s, Stage::StageData, JobOutcome::Complete);
    let p = step(&mut s, &[done]);
    let applied = jobs_applied(&p);
    assert_eq!(applied.len(), 1);
    assert_eq!(stage_label(applied[0]), "score");
    let spec = applied[0].spec.as_ref().unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(spec.completions, Some(4));
    assert_eq!(
        events(&p),
        [(false, "StageSucceeded"), (false, "StageStarted")]
    );
    let st = status(&p);
    assert_eq!(st.stage, Some(Stage::Score));
    assert_eq!(
        st.stage_status(Stage::StageData).unwrap().state,
        StageState::Succeeded
    );
    assert_eq!(p.finished_stages, [(Stage::StageData, 300.0)]);
}

#[test]
fn finished_job_deleted_by_ttl_is_not_rerun() {
    let mut s = search();
    step(&mut s, &[]);
    let d = job(&s, Stage::StageData, JobOutcome::Complete);
    step(&mut s, &[d]);
    // The stage-data Job is gone (TTL); the score Job has not been seen yet.
    let p = step(&mut s, &[]);
    let applied = jobs_applied(&p);
    assert_eq!(applied.len(), 1);
    assert_eq!(stage_label(applied[0]), "score");
}

#[test]
fn score_summaries_are_summed_and_select_fills_top_k() {
    let mut s = search();
    step(&mut s, &[]);
    let d = job(&s, Stage::StageData, JobOutcome::Complete);
    step(&mut s, &[d]);
    let mut score = job(&s, Stage::Score, JobOutcome::Complete);
    score.summaries = (0..4)
        .map(|i| summary(&format!(r#"{{"index":{i},"scored":25}}"#)))
        .collect();
    let p = step(&mut s, &[score.clone()]);
    assert_eq!(status(&p).candidates_scored, Some(100));
    let mut select = job(&s, Stage::Select, JobOutcome::Complete);
    let many: Vec<String> = (0..30)
        .map(|i| format!(r#"{{"arch":"a{i}","rank":{}}}"#, i + 1))
        .collect();
    select.summaries = vec![summary(&format!(r#"{{"topK":[{}]}}"#, many.join(",")))];
    let p = step(&mut s, &[score, select]);
    let st = status(&p);
    assert_eq!(st.top_k.len(), 20, "the status keeps at most 20");
    assert_eq!(st.best.as_ref().unwrap().arch, "a0");
    assert_eq!(stage_label(jobs_applied(&p)[0]), "train");
}

#[test]
fn a_score_job_seen_with_fewer_pods_never_counts_down_and_select_has_the_last_word() {
    let mut s = search();
    step(&mut s, &[]);
    let d = job(&s, Stage::StageData, JobOutcome::Complete);
    step(&mut s, &[d]);
    let mut score = job(&s, Stage::Score, JobOutcome::Running);
    score.summaries = (0..2)
        .map(|i| summary(&format!(r#"{{"index":{i},"scored":3}}"#)))
        .collect();
    let p = step(&mut s, std::slice::from_ref(&score));
    assert_eq!(status(&p).candidates_scored, Some(6));
    // The TTL controller took one pod away before the Job was seen complete.
    score.outcome = JobOutcome::Complete;
    score.summaries.truncate(1);
    let p = step(&mut s, std::slice::from_ref(&score));
    assert_eq!(status(&p).candidates_scored, Some(6));
    let mut select = job(&s, Stage::Select, JobOutcome::Complete);
    select.summaries = vec![summary(r#"{"scored":5,"topK":[{"arch":"a","rank":1}]}"#)];
    let p = step(&mut s, &[score, select]);
    assert_eq!(
        status(&p).candidates_scored,
        Some(5),
        "select counts every shard"
    );
}

#[test]
fn failed_index_is_retried_with_a_warning_only() {
    let mut s = search();
    step(&mut s, &[]);
    let d = job(&s, Stage::StageData, JobOutcome::Complete);
    step(&mut s, &[d]);
    let mut score = job(&s, Stage::Score, JobOutcome::Running);
    step(&mut s, std::slice::from_ref(&score));
    score.failed = 1;
    score.failure_messages = vec!["CUDA error".into()];
    let p = step(&mut s, std::slice::from_ref(&score));
    assert!(jobs_applied(&p).is_empty());
    assert_eq!(events(&p), [(true, "IndexFailed")]);
    let st = status(&p);
    assert_eq!(st.phase, Phase::Running);
    assert!(!st.is_true(condition::FAILED));
    assert_eq!(st.stage_status(Stage::Score).unwrap().failed, 1);
    // Seen once: no second warning.
    let again = plan(&s, &[score], &now());
    assert!(events(&again).is_empty());
}

#[test]
fn too_many_failed_indexes_fail_the_search_once() {
    let mut s = search();
    step(&mut s, &[]);
    let d = job(&s, Stage::StageData, JobOutcome::Complete);
    step(&mut s, &[d]);
    let mut score = job(
        &s,
        Stage::Score,
        JobOutcome::Failed {
            reason: "MaxFailedIndexesExceeded".into(),
            message: "Job has exceeded the specified maximal number of failed indexes".into(),
        },
    );
    score.failed = 2;
    score.succeeded = 2;
    score.failure_messages = vec!["shard 3: out of memory".into()];
    let p = step(&mut s, std::slice::from_ref(&score));
    assert!(jobs_applied(&p).is_empty());
    assert_eq!(events(&p), [(true, "StageFailed")]);
    let st = status(&p);
    assert_eq!(st.phase, Phase::Failed);
    let failed = st.condition(condition::FAILED).unwrap();
    assert_eq!(failed.status, "True");
    assert!(
        failed.message.contains("MaxFailedIndexesExceeded"),
        "{}",
        failed.message
    );
    assert!(
        failed.message.contains("out of memory"),
        "{}",
        failed.message
    );
    assert!(!st.is_true(condition::PROGRESSING));
    assert!(p.requeue.is_none());
    let again = plan(&s, &[score], &now());
    assert!(again.actions.is_empty(), "{:?}", again.actions);
}

#[test]
fn tolerated_failed_indexes_let_the_search_go_on() {
    let mut s = search();
    step(&mut s, &[]);
    let d = job(&s, Stage::StageData, JobOutcome::Complete);
    step(&mut s, &[d]);
    let mut score = job(
        &s,
        Stage::Score,
        JobOutcome::Failed {
            reason: "FailedIndexes".into(),
            message: "Job has failed indexes".into(),
        },
    );
    score.failed = 1;
    score.succeeded = 3;
    let p = step(&mut s, &[score]);
    assert_eq!(stage_label(jobs_applied(&p)[0]), "select");
    assert!(events(&p).contains(&(true, "StagePartiallySucceeded")));
}

#[test]
fn exit_2_job_failure_fails_the_search() {
    let mut s = search();
    step(&mut s, &[]);
    let failed = job(
        &s,
        Stage::StageData,
        JobOutcome::Failed {
            reason: "PodFailurePolicy".into(),
            message: "Container runner for pod x failed with exit code 2".into(),
        },
    );
    let p = step(&mut s, &[failed]);
    assert_eq!(status(&p).phase, Phase::Failed);
    assert!(jobs_applied(&p).is_empty());
}

#[test]
fn spec_change_deletes_old_jobs_and_restarts() {
    let mut s = search();
    step(&mut s, &[]);
    let old = job(&s, Stage::StageData, JobOutcome::Complete);
    step(&mut s, std::slice::from_ref(&old));
    let old_score = job(&s, Stage::Score, JobOutcome::Running);
    s.spec.sampling.candidates = 200;
    s.metadata.generation = Some(2);
    let p = step(&mut s, &[old, old_score.clone()]);
    let deleted: Vec<_> = p
        .actions
        .iter()
        .filter_map(|a| {
            if let Action::DeleteJob(n) = a {
                Some(n.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(deleted.contains(&old_score.name.as_str()));
    let applied = jobs_applied(&p);
    assert_eq!(stage_label(applied[0]), "stage-data");
    assert_ne!(
        applied[0].metadata.name.as_deref(),
        Some(old_score.name.as_str())
    );
    assert!(events(&p).contains(&(false, "SpecChanged")));
    let st = status(&p);
    assert_eq!(st.observed_generation, Some(2));
    assert_eq!(
        st.stage_status(Stage::StageData).unwrap().state,
        StageState::Running
    );
    assert!(st.stage_status(Stage::Score).is_none());
}

#[test]
fn suspend_and_resume_patch_the_running_job() {
    let mut s = search();
    step(&mut s, &[]);
    let mut running = job(&s, Stage::StageData, JobOutcome::Running);
    s.spec.suspend = true;
    let p = step(&mut s, std::slice::from_ref(&running));
    assert!(p.actions.contains(&Action::SuspendJob {
        name: running.name.clone(),
        suspend: true
    }));
    let st = status(&p);
    assert_eq!(st.phase, Phase::Suspended);
    assert!(st.is_true(condition::SUSPENDED));
    assert!(!st.is_true(condition::PROGRESSING));
    // Suspending does not change the spec hash: no restart.
    assert!(!p.actions.iter().any(|a| matches!(a, Action::DeleteJob(_))));

    running.suspended = true;
    s.spec.suspend = false;
    let p = step(&mut s, &[running.clone()]);
    assert!(p.actions.contains(&Action::SuspendJob {
        name: running.name,
        suspend: false
    }));
    let st = status(&p);
    assert_eq!(st.phase, Phase::Running);
    assert_eq!(st.condition(condition::SUSPENDED).unwrap().status, "False");
}

#[test]
fn suspended_search_starts_no_stage() {
    let mut s = search();
    s.spec.suspend = true;
    let p = step(&mut s, &[]);
    assert!(jobs_applied(&p).is_empty());
    assert_eq!(status(&p).phase, Phase::Suspended);
}

#[test]
fn kueue_managed_jobs_are_never_suspended_by_the_operator() {
    let mut s = search();
    s.spec.queue_name = Some("gpu".into());
    let p = step(&mut s, &[]);
    let j = jobs_applied(&p)[0];
    assert_eq!(
        j.metadata.labels.as_ref().unwrap()[LABEL_KUEUE_QUEUE],
        "gpu"
    );
    assert_eq!(j.spec.as_ref().unwrap().suspend, None);
    let running = job(&s, Stage::StageData, JobOutcome::Running);
    s.spec.suspend = true;
    let p = step(&mut s, &[running]);
    assert!(!p
        .actions
        .iter()
        .any(|a| matches!(a, Action::SuspendJob { .. })));
    let st = status(&p);
    assert_eq!(st.phase, Phase::Suspended);
    assert!(st
        .condition(condition::SUSPENDED)
        .unwrap()
        .message
        .contains("Kueue"));
}

#[test]
fn all_stages_done_means_succeeded() {
    let mut s = search();
    let mut all = Vec::new();
    step(&mut s, &[]);
    for stage in Stage::ALL {
        let mut j = job(&s, stage, JobOutcome::Complete);
        if stage == Stage::Report {
            j.summaries = vec![summary(
                r#"{"resultsUri":"s3://b/nas/team/s1/uid-1/summary.json"}"#,
            )];
        }
        all.push(j);
        step(&mut s, &all);
    }
    let st = s.status.clone().unwrap();
    assert_eq!(st.phase, Phase::Succeeded);
    assert!(st.is_true(condition::SUCCEEDED));
    assert!(!st.is_true(condition::PROGRESSING));
    assert_eq!(
        st.results_uri.as_deref(),
        Some("s3://b/nas/team/s1/uid-1/summary.json")
    );
    let again = plan(&s, &all, &now());
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert!(again.requeue.is_none());
}

#[test]
fn invalid_spec_is_not_accepted_and_not_retried() {
    let mut s = search();
    s.spec.selection.top_k = 500;
    let p = step(&mut s, &[]);
    assert!(jobs_applied(&p).is_empty());
    let st = status(&p);
    let acc = st.condition(condition::ACCEPTED).unwrap();
    assert_eq!(acc.status, "False");
    assert_eq!(acc.reason, "InvalidSpec");
    assert!(
        acc.message.contains("spec.selection.topK"),
        "{}",
        acc.message
    );
    assert!(p.requeue.is_none());
    assert_eq!(events(&p), [(true, "InvalidSpec")]);
    let again = plan(&s, &[], &now());
    assert!(again.actions.is_empty(), "no hot loop: {:?}", again.actions);
}

#[test]
fn deletion_without_finalizer_leaves_jobs_to_the_garbage_collector() {
    let mut s = search();
    s.metadata.deletion_timestamp = Some(now());
    let running = job(&s, Stage::Score, JobOutcome::Running);
    assert!(plan(&s, &[running], &now()).actions.is_empty());
}

#[test]
fn artifact_cleanup_runs_behind_the_finalizer() {
    let mut s = search();
    s.spec.delete_artifacts_on_deletion = true;
    let p = plan(&s, &[], &now());
    assert_eq!(p.actions[0], Action::AddFinalizer);

    s.metadata.finalizers = Some(vec![FINALIZER.into()]);
    s.metadata.deletion_timestamp = Some(now());
    let p = plan(&s, &[], &now());
    let applied = jobs_applied(&p);
    assert_eq!(stage_label(applied[0]), "cleanup");
    let cmd = applied[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .command
        .clone();
    assert_eq!(
        cmd.unwrap()[..2],
        ["nas-runner".to_string(), "cleanup".to_string()]
    );
    assert!(!p.actions.contains(&Action::RemoveFinalizer));
    // Not owned by the search (a foreground deletion would delete it first); it names the
    // search in an annotation, goes by its TTL, and owns the ConfigMap it mounts.
    let meta = &applied[0].metadata;
    assert!(meta.owner_references.is_none(), "{meta:?}");
    assert_eq!(
        meta.annotations.as_ref().unwrap()[nas_operator::jobs::ANNOTATION_SEARCH_UID],
        s.metadata.uid.clone().unwrap()
    );
    assert!(applied[0]
        .spec
        .as_ref()
        .unwrap()
        .ttl_seconds_after_finished
        .is_some());
    let job_name = meta.name.clone().unwrap();
    assert!(p
        .actions
        .iter()
        .any(|a| matches!(a, Action::ApplyCleanupConfigMap { job, .. } if *job == job_name)));

    let mut cleanup = job(&s, Stage::Report, JobOutcome::Complete);
    cleanup.kind = Some(JobKind::Cleanup);
    let p = plan(&s, &[cleanup], &now());
    assert_eq!(p.actions, [Action::RemoveFinalizer]);
}

//! Fixtures shared by the operator's tests.
#![allow(dead_code)]
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nas_api::contract::Stage;
use nas_api::crd::NASSearch;
use nas_api::resolved::ResolvedSpec;
use nas_operator::jobs::{job_name, JobKind};
use nas_operator::observed::{JobOutcome, ObservedJob};
use nas_operator::termination::StageSummary;

pub const SEARCH: &str = r#"
apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata: {name: s1, namespace: team, uid: "uid-1", generation: 1, resourceVersion: "7"}
spec:
  runner: {image: "runner:1"}
  dataset: {source: "s3://data/cifar10", format: cifar10}
  space: {name: nb201}
  sampling: {candidates: 100, shards: 4, seed: 1}
  selection: {topK: 3}
  resources:
    score: {gpus: 1, maxFailedIndexes: 1, retriesPerIndex: 3}
  artifacts:
    bucket: b
    credentials: {secretRef: {name: s3-creds}}
"#;

pub fn search() -> NASSearch {
    serde_yaml::from_str(SEARCH).unwrap()
}

pub fn hash(s: &NASSearch) -> String {
    ResolvedSpec::from_search(s).unwrap().spec_hash
}

pub fn now() -> Time {
    Time("2026-01-01T00:10:00Z".parse().unwrap())
}

pub fn at(s: &str) -> Time {
    Time(s.parse().unwrap())
}

/// A Job of `stage` for `search`'s current spec.
pub fn job(search: &NASSearch, stage: Stage, outcome: JobOutcome) -> ObservedJob {
    let h = hash(search);
    let total = match stage {
        Stage::Score => 4,
        Stage::Train => 3,
        _ => 1,
    };
    let done = matches!(outcome, JobOutcome::Complete);
    ObservedJob {
        name: job_name("s1", JobKind::Stage(stage), &h),
        kind: Some(JobKind::Stage(stage)),
        spec_hash: Some(h),
        outcome,
        suspended: false,
        total,
        succeeded: if done { total } else { 0 },
        failed: 0,
        active: if done { 0 } else { 1 },
        start_time: Some(at("2026-01-01T00:00:00Z")),
        completion_time: done.then(|| at("2026-01-01T00:05:00Z")),
        summaries: Vec::new(),
        failure_messages: Vec::new(),
        stuck: Vec::new(),
        pending: 0,
    }
}

pub fn summary(json: &str) -> StageSummary {
    serde_json::from_str(json).unwrap()
}

/// A search of `candidates` candidates in `shards` score shards (the scale fixtures).
pub fn search_at_scale(candidates: u32, shards: u32) -> NASSearch {
    let mut s = search();
    s.spec.sampling.candidates = candidates;
    s.spec.sampling.shards = shards;
    s
}

/// The score Job of `search` as the API server lists it, with its pods: the first `done`
/// indexes ended with a runner summary, the next `running` indexes running.
pub fn score_job_at_scale(
    search: &NASSearch,
    done: u32,
    running: u32,
) -> (
    k8s_openapi::api::batch::v1::Job,
    Vec<k8s_openapi::api::core::v1::Pod>,
) {
    use nas_api::contract::{Outcome, TerminationSummary};
    use serde_json::json;
    let resolved = ResolvedSpec::from_search(search).unwrap();
    let mut job = nas_operator::jobs::build_job(search, &resolved, JobKind::Stage(Stage::Score));
    let job_name = job.metadata.name.clone().unwrap();
    job.metadata.uid = Some("job-uid".into());
    let shards = search.spec.sampling.shards;
    let per_shard = u64::from(search.spec.sampling.candidates / shards);
    let complete = done == shards;
    let mut conditions = Vec::new();
    if complete {
        conditions.push(json!({"type": "Complete", "status": "True",
            "lastTransitionTime": "2026-01-01T01:00:00Z"}));
    }
    job.status = Some(
        serde_json::from_value(json!({
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": complete.then_some("2026-01-01T01:00:00Z"),
            "completedIndexes": if done > 0 { format!("0-{}", done - 1) } else { String::new() },
            "active": running,
            "succeeded": done,
            "conditions": conditions,
        }))
        .unwrap(),
    );
    let pod = |i: u32, ended: bool| {
        let state = if ended {
            let mut s = TerminationSummary::new(
                Stage::Score,
                Some(i),
                Outcome::Succeeded,
                format!("shard {i}: scored {per_shard} of {per_shard} candidates"),
            );
            s.scored = Some(per_shard);
            s.failed = Some(0);
            json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "message": s.to_json_bounded(), "finishedAt": "2026-01-01T00:30:00Z"}})
        } else {
            json!({"running": {"startedAt": "2026-01-01T00:20:00Z"}})
        };
        serde_json::from_value(json!({
            "metadata": {"name": format!("{job_name}-{i}-x7k2p"), "namespace": "team",
                "labels": {"batch.kubernetes.io/job-name": job_name,
                    "batch.kubernetes.io/controller-uid": "job-uid",
                    "batch.kubernetes.io/job-completion-index": i.to_string(),
                    "nas.example.dev/search": "s1"},
                "annotations": {"batch.kubernetes.io/job-completion-index": i.to_string()}},
            "status": {"phase": if ended { "Succeeded" } else { "Running" },
                "containerStatuses": [{"name": nas_operator::jobs::RUNNER_CONTAINER,
                    "image": "runner:1", "imageID": "", "ready": !ended, "restartCount": 0,
                    "state": state}]},
        }))
        .unwrap()
    };
    let pods = (0..done)
        .map(|i| pod(i, true))
        .chain((done..done + running).map(|i| pod(i, false)))
        .collect();
    (job, pods)
}

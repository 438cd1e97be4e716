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

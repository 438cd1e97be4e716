//! The spec hash across operator versions: a search whose status and Jobs were written under
//! the previous form of the hash keeps its work, and only a real spec change restarts it.
mod common;

use common::*;
use nas_api::contract::Stage;
use nas_api::crd::{NASSearch, StageState};
use nas_api::resolved::{canonical, spec_hash_v1};
use nas_operator::jobs::{job_name, JobKind};
use nas_operator::observed::{JobOutcome, ObservedJob};
use nas_operator::planner::{plan, Action, Plan};
use serde_json::json;

/// A search one reconcile into score, its status and Jobs labelled with `recorded`.
fn recorded_under(recorded: &str) -> (NASSearch, Vec<ObservedJob>) {
    let mut s = search();
    let first = plan(&s, &[], &now());
    let mut st = first
        .actions
        .iter()
        .find_map(|a| match a {
            Action::PatchStatus(st) => Some(st.as_ref().clone()),
            _ => None,
        })
        .expect("a status");
    st.spec_hash = Some(recorded.to_string());
    s.status = Some(st);
    let under = |stage: Stage, outcome: JobOutcome| ObservedJob {
        name: job_name("s1", JobKind::Stage(stage), recorded),
        spec_hash: Some(recorded.to_string()),
        ..job(&s, stage, outcome)
    };
    let jobs = vec![
        under(Stage::StageData, JobOutcome::Complete),
        under(Stage::Score, JobOutcome::Running),
    ];
    (s, jobs)
}

fn deletes(p: &Plan) -> Vec<&str> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteJob(j) => Some(j.as_str()),
            _ => None,
        })
        .collect()
}

fn restarted(p: &Plan) -> bool {
    p.actions
        .iter()
        .any(|a| matches!(a, Action::Event(e) if e.reason == "SpecChanged"))
}

#[test]
fn work_recorded_under_the_previous_hash_form_is_kept() {
    let s = search();
    let v1 = spec_hash_v1(&s.spec);
    assert_ne!(
        v1,
        hash(&s),
        "the forms differ, or this test proves nothing"
    );
    let (s, jobs) = recorded_under(&v1);
    let p = plan(&s, &jobs, &now());
    assert!(deletes(&p).is_empty(), "{:?}", p.actions);
    assert!(!restarted(&p), "{:?}", p.actions);
    let applied: Vec<String> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ApplyJob(j) => j.metadata.name.clone(),
            _ => None,
        })
        .collect();
    assert!(applied.is_empty(), "no Job is created again: {applied:?}");
    let st = p
        .actions
        .iter()
        .find_map(|a| match a {
            Action::PatchStatus(st) => Some(st.as_ref()),
            _ => None,
        })
        .expect("a status");
    assert_eq!(st.spec_hash.as_deref(), Some(v1.as_str()));
    let data = st.stages.iter().find(|e| e.stage == Stage::StageData);
    assert_eq!(data.map(|e| e.state), Some(StageState::Succeeded));
    assert_eq!(st.stage, Some(Stage::Score));
}

#[test]
fn a_hash_of_no_known_form_restarts_the_pipeline() {
    let (s, jobs) = recorded_under("0123456789abcdef");
    let p = plan(&s, &jobs, &now());
    assert!(restarted(&p), "{:?}", p.actions);
    assert_eq!(deletes(&p).len(), 2, "{:?}", p.actions);
}

#[test]
fn a_field_a_later_release_adds_with_a_default_leaves_the_canonical_form_unchanged() {
    let schema = nas_api::schema::spec_schema();
    let spec = serde_json::to_value(search().spec).unwrap();
    let mut later_schema = schema.clone();
    later_schema["properties"]["sampling"]["properties"]["futureKnob"] =
        json!({"type": "integer", "default": 3});
    let mut later = spec.clone();
    later["sampling"]["futureKnob"] = json!(3);
    assert_eq!(
        canonical(&spec, Some(schema)),
        canonical(&later, Some(&later_schema))
    );
    // A value other than the default is part of the spec.
    later["sampling"]["futureKnob"] = json!(4);
    assert_ne!(
        canonical(&spec, Some(schema)),
        canonical(&later, Some(&later_schema))
    );
    // Defaults written out by the user (or filled in by the API server) hash as left out.
    let mut explicit = search();
    explicit.spec.sampling.strategy = Default::default();
    assert_eq!(hash(&explicit), hash(&search()));
}

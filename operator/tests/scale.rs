//! The planner at scale: 1,000 score shards and 100,000 candidates keep the status within
//! `STATUS_MAX_BYTES` and its counts exact. Timings are in `benches/scale.rs`, not here.
mod common;

use common::*;
use nas_api::contract::Stage;
use nas_api::crd::{NASSearch, NASSearchStatus, STATUS_MAX_BYTES};
use nas_operator::observed::{JobOutcome, ObservedJob};
use nas_operator::planner::{plan, Action, Plan};

fn planned_status(p: &Plan) -> Option<NASSearchStatus> {
    p.actions.iter().rev().find_map(|a| match a {
        Action::PatchStatus(st) => Some(st.as_ref().clone()),
        _ => None,
    })
}

fn step(s: &mut NASSearch, jobs: &[ObservedJob]) -> NASSearchStatus {
    let p = plan(s, jobs, &now());
    if let Some(st) = planned_status(&p) {
        s.status = Some(st);
    }
    s.status.clone().expect("a status")
}

#[test]
fn a_thousand_shards_keep_the_status_small_and_its_counts_exact() {
    let (candidates, shards) = (100_000, 1_000);
    let mut s = search_at_scale(candidates, shards);
    step(&mut s, &[]);
    let data = job(&s, Stage::StageData, JobOutcome::Complete);
    assert_eq!(
        step(&mut s, std::slice::from_ref(&data)).stage,
        Some(Stage::Score)
    );
    for (done, running) in [(1, 999), (600, 400), (shards, 0)] {
        let (score, pods) = score_job_at_scale(&s, done, running);
        let observed = ObservedJob::from_job(&score, &pods);
        assert_eq!(observed.summaries.len(), done as usize);
        let st = step(&mut s, &[data.clone(), observed]);
        let bytes = serde_json::to_vec(&st).unwrap().len();
        assert!(
            bytes <= STATUS_MAX_BYTES,
            "{done} of {shards} shards done: the status is {bytes} bytes"
        );
        let per_shard = u64::from(candidates / shards);
        assert_eq!(st.candidates_scored, Some(u64::from(done) * per_shard));
    }
    assert_eq!(s.status.unwrap().stage, Some(Stage::Select));
}

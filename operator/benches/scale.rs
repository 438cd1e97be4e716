//! The operator at scale (issue 20): one search of 100,000 candidates in 1,000 score shards,
//! observed mid-score (600 shards done, 400 running) and at the end of score (1,000 done).
//! Prints, per case: the planner's time, the time to reduce the Job and its 1,000 pods, one
//! whole reconcile against an in-process API server double that answers with pre-serialized
//! lists (JSON parsing included, no network), the API requests of that reconcile, and the size
//! of the status it writes. Medians of `NAS_SCALE_RUNS` runs (default 31), on one thread.
//!
//! `cargo bench -p nas-operator --bench scale`
#[path = "../tests/common.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Method, Request, Response};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::Client;
use nas_api::contract::Stage;
use nas_api::crd::{NASSearch, STATUS_MAX_BYTES};
use nas_operator::metrics::Metrics;
use nas_operator::object::SearchObject;
use nas_operator::observed::{JobOutcome, ObservedJob};
use nas_operator::planner::{plan, Action};
use nas_operator::reconcile::{reconcile, Backoff, Context};
use serde_json::json;

const CANDIDATES: u32 = 100_000;
const SHARDS: u32 = 1_000;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

/// The search one reconcile into score (its status says so), as the API server holds it.
fn search_in_score() -> NASSearch {
    let mut s = search_at_scale(CANDIDATES, SHARDS);
    for jobs in [
        vec![],
        vec![job(&s, Stage::StageData, JobOutcome::Complete)],
    ] {
        let p = plan(&s, &jobs, &now());
        for a in p.actions {
            if let Action::PatchStatus(st) = a {
                s.status = Some(*st);
            }
        }
    }
    s
}

/// Answers every request of one reconcile from pre-serialized bodies; returns the count.
async fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    jobs: Bytes,
    pods: Bytes,
    search: Bytes,
) -> usize {
    let mut n = 0;
    while let Some((req, send)) = handle.next_request().await {
        n += 1;
        let path = req.uri().path().to_string();
        let body = if req.method() == Method::GET && path.ends_with("/jobs") {
            jobs.clone()
        } else if req.method() == Method::GET && path.ends_with("/pods") {
            pods.clone()
        } else if path.ends_with("/status") {
            search.clone()
        } else {
            req.into_body().collect_bytes().await.unwrap_or_default()
        };
        send.send_response(
            Response::builder()
                .status(200)
                .body(Body::from(body))
                .unwrap(),
        );
    }
    n
}

fn list(kind: &str, items: serde_json::Value) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"resourceVersion": "1"}, "items": items}))
        .unwrap(),
    )
}

/// One reconcile against the double: (wall time, requests made).
fn one_reconcile(
    rt: &tokio::runtime::Runtime,
    s: &NASSearch,
    job: &Job,
    pods: &[Pod],
) -> (Duration, usize) {
    let jobs = list("JobList", json!([job]));
    let pods = list("PodList", serde_json::to_value(pods).unwrap());
    let search = Bytes::from(serde_json::to_vec(s).unwrap());
    let object = Arc::new(SearchObject::from(s.clone()));
    rt.block_on(async {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(serve(handle, jobs, pods, search));
        let ctx = Arc::new(Context::new(
            Client::new(svc, "team"),
            Reporter {
                controller: "nas-operator".into(),
                instance: Some("bench".into()),
            },
            Arc::new(Metrics::default()),
            Backoff::default(),
        ));
        let t = Instant::now();
        reconcile(object, ctx.clone()).await.expect("reconcile");
        let elapsed = t.elapsed();
        drop(ctx); // closes the client, ending the double
        (elapsed, server.await.unwrap())
    })
}

fn main() {
    let runs: usize = std::env::var("NAS_SCALE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(31);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = search_in_score();
    let data = job(&s, Stage::StageData, JobOutcome::Complete);
    println!("case\tplan_ms\treduce_ms\treconcile_ms\tapi_requests\tpods_list_bytes\tstatus_bytes");
    for (label, done, running) in [("mid-score", 600, 400), ("score-done", SHARDS, 0)] {
        let (job, pods) = score_job_at_scale(&s, done, running);
        let observed = ObservedJob::from_job(&job, &pods);
        let jobs = [data.clone(), observed];
        let plan_t = time(runs, || plan(&s, &jobs, &now()));
        let reduce_t = time(runs, || ObservedJob::from_job(&job, &pods));
        let status_bytes = plan(&s, &jobs, &now())
            .actions
            .iter()
            .find_map(|a| match a {
                Action::PatchStatus(st) => Some(serde_json::to_vec(st).unwrap().len()),
                _ => None,
            })
            .unwrap_or(0);
        assert!(status_bytes <= STATUS_MAX_BYTES);
        let mut times = Vec::new();
        let mut requests = 0;
        for _ in 0..runs {
            let (t, n) = one_reconcile(&rt, &s, &job, &pods);
            times.push(t);
            requests = n;
        }
        let pods_bytes = serde_json::to_vec(&pods).unwrap().len();
        println!(
            "{label}\t{:.3}\t{:.3}\t{:.3}\t{requests}\t{pods_bytes}\t{status_bytes}",
            plan_t.as_secs_f64() * 1e3,
            reduce_t.as_secs_f64() * 1e3,
            median(times).as_secs_f64() * 1e3,
        );
    }
}

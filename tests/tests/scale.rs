//! The operator at scale on the real control plane (issue 20): one search of 200 score shards
//! whose runner is a trivial command (each stage writes a fixed summary and exits 0), so that
//! what is measured is the operator, the API server and the Job controller. Prints the seconds
//! from apply to Succeeded, the operator's reconciles and its API requests by method.
//! A benchmark, not a test: `#[ignore]`d, run by `bench/operator-scale.sh`.
use std::path::Path;
use std::time::{Duration, Instant};

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::crd::CandidateSummary;
use nas_e2e::cluster::{Cluster, RunnerSetup};
use nas_e2e::scenario::*;

const SHARDS: u32 = 200;

/// A runner that writes `{stage}.json` (a summary made here) to the termination log.
fn trivial_runner(dir: &Path) -> RunnerSetup {
    let candidate = |i: u64| {
        CandidateSummary {
        index: Some(i),
        arch: format!("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~{i}|"),
        val_accuracy: Some(0.5),
        top1_error: Some(0.5),
        top5_error: Some(0.1),
        ..Default::default()
    }
    };
    for stage in Stage::ALL {
        let mut s = TerminationSummary::new(stage, None, Outcome::Succeeded, "trivial");
        match stage {
            Stage::Score => {
                s.scored = Some(1);
                s.failed = Some(0);
            }
            Stage::Select => s.top_k = vec![candidate(0), candidate(1)],
            Stage::Train | Stage::Evaluate => s.best = Some(candidate(0)),
            Stage::Report => {
                s.best = Some(candidate(0));
                s.results_uri = Some("s3://nas-e2e/scale/summary.json".into());
            }
            Stage::StageData => {}
        }
        std::fs::write(
            dir.join(format!("{}.json", stage.as_str())),
            s.to_json_bounded(),
        )
        .unwrap();
    }
    let script = dir.join("nas-runner-trivial");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat \"{}/$NAS_STAGE.json\" > \"$NAS_TERMINATION_LOG\"\n",
            dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    RunnerSetup { executable: script }
}

/// The sum of a counter's samples whose labels contain `labels`.
fn counter(metrics: &str, name: &str, labels: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/operator-scale.sh"]
async fn two_hundred_score_shards_of_a_trivial_runner() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&["scale"], trivial_runner(dir.path())).await;
    let yaml = search_yaml(&cluster, "scale", "wide", "").replace(
        "sampling: {candidates: 6, seed: 1, shards: 2}",
        &format!("sampling: {{candidates: {SHARDS}, seed: 1, shards: {SHARDS}}}"),
    );
    assert!(yaml.contains(&format!("shards: {SHARDS}")));
    let started = Instant::now();
    cluster.apply(&yaml).await;
    let s = cluster
        .wait_ended("scale", "wide", Duration::from_secs(1800))
        .await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        phase(&s),
        nas_api::crd::Phase::Succeeded,
        "{}",
        cluster.diagnostics("scale")
    );
    let metrics = cluster.operator_metrics().expect("operator metrics");
    let reconciles = counter(&metrics, "nas_operator_reconciles_total", "");
    let mut line = format!(
        "score shards {SHARDS}: apply to Succeeded {seconds:.1} s, reconciles {reconciles}, API requests"
    );
    let mut total = 0;
    for method in ["GET", "POST", "PATCH", "PUT", "DELETE"] {
        let n = counter(
            &metrics,
            "nas_operator_api_requests_total",
            &format!("method=\"{method}\""),
        );
        total += n;
        line += &format!(" {method} {n}");
    }
    line += &format!(
        " (total {total}), score pods {}",
        cluster.runner_launches("scale", "score")
    );
    let status_bytes = serde_json::to_vec(&s.status).unwrap().len();
    line += &format!(", status {status_bytes} bytes");
    println!("{line}");
}

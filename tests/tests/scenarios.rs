//! End-to-end scenarios: the real `nas-operator` and `nas-runner` binaries against the API
//! server double, the Job controller double and an in-process S3 server, on a small cut of the
//! real CIFAR-10 (`../shared`). Each test is one scenario of a search's life.
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use nas_api::crd::{NASSearch, Phase};
use nas_e2e::cluster::{binary, cifar10_subset, Cluster, RunnerSetup};

/// Long enough for a whole tiny search on 2 cores, with room for a loaded CI machine.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(420);

/// A tiny search; `extra` holds more `spec` fields (indented YAML lines).
fn search_yaml(cluster: &Cluster, ns: &str, name: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata: {{name: {name}, namespace: {ns}}}
spec:
  runner: {{image: "nas-runner:e2e"}}
  dataset: {{source: "{data}", format: cifar10, resolution: 32}}
  space: {{name: nb201, channels: 4, cells: 1}}
  sampling: {{candidates: 6, seed: 1, shards: 2}}
  metrics: {{names: [angle_loss, params], angleLossSteps: 5}}
  selection: {{topK: 2}}
  train: {{preset: short, overrides: {{epochs: 1, batchSize: 32}}}}
  evaluate: {{preset: nb201, overrides: {{epochs: 1, batchSize: 32}}}}
  artifacts:
    bucket: nas-e2e
    prefix: runs
    endpoint: "{endpoint}"
    forcePathStyle: true
    credentials: {{fromEnvironment: true}}
{extra}"#,
        data = cifar10_subset(30).display(),
        endpoint = cluster.s3_endpoint(),
    )
}

fn phase(s: &NASSearch) -> Phase {
    s.status.as_ref().map(|st| st.phase).unwrap_or_default()
}

/// The search's artifact root in the bucket: `runs/{ns}/{name}/{uid}/`.
fn root(s: &NASSearch) -> String {
    format!(
        "runs/{}/{}/{}/",
        s.metadata.namespace.as_deref().unwrap_or_default(),
        s.metadata.name.as_deref().unwrap_or_default(),
        s.metadata.uid.as_deref().unwrap_or_default()
    )
}

fn assert_succeeded(cluster: &Cluster, s: &NASSearch) {
    assert_eq!(
        phase(s),
        Phase::Succeeded,
        "status {}\n{}",
        serde_json::to_string_pretty(&s.status).unwrap(),
        cluster.operator_log()
    );
    let summary = cluster.object(&format!("{}summary.json", root(s)));
    let text =
        std::fs::read_to_string(&summary).unwrap_or_else(|e| panic!("{}: {e}", summary.display()));
    let summary: nas_api::records::Summary = serde_json::from_str(&text).unwrap();
    let st = s.status.as_ref().unwrap();
    let best = st.best.as_ref().expect("status.best");
    assert!(best.arch.starts_with('|'), "{best:?}");
    assert_eq!(summary.winner.as_ref().map(|w| &w.arch), Some(&best.arch));
    assert!(st
        .results_uri
        .as_deref()
        .unwrap_or_default()
        .ends_with("summary.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_on_cifar10_goes_from_apply_to_succeeded() {
    let cluster = Cluster::start(RunnerSetup::default()).await;
    cluster
        .apply(&search_yaml(&cluster, "team-a", "c10", ""))
        .await;
    let s = cluster.wait_ended("team-a", "c10", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &s);
    // One pod per index and stage: nothing ran twice.
    assert_eq!(cluster.runner_launches("team-a", "score"), 2);
    assert_eq!(cluster.runner_launches("team-a", "train"), 2);
    assert_eq!(s.status.as_ref().unwrap().candidates_scored, Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_killed_mid_search_resumes_without_recomputing_shards() {
    let mut cluster = Cluster::start(RunnerSetup::default()).await;
    let s = cluster
        .apply(&search_yaml(&cluster, "team-b", "restart", ""))
        .await;
    let marker = cluster.object(&format!("{}score/shard-00001._SUCCESS", root(&s)));
    let first = cluster.object(&format!("{}score/shard-00000._SUCCESS", root(&s)));
    for _ in 0..2400 {
        if marker.exists() && first.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        marker.exists(),
        "the score shards never finished\n{}",
        cluster.operator_log()
    );
    cluster.kill_operator();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start_operator();
    let s = cluster
        .wait_ended("team-b", "restart", SEARCH_TIMEOUT)
        .await;
    assert_succeeded(&cluster, &s);
    assert_eq!(cluster.runner_launches("team-b", "stage-data"), 1);
    assert_eq!(
        cluster.runner_launches("team-b", "score"),
        2,
        "a finished shard ran again"
    );
}

/// A stand-in for `nas-runner` that fails score index 1: once (exit 1, retried) or always
/// (exit 3, this index cannot be done).
fn failing_runner(dir: &std::path::Path, mode: &str) -> RunnerSetup {
    let script: PathBuf = dir.join("nas-runner-failing");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$NAS_STAGE\" = score ] && [ \"$JOB_COMPLETION_INDEX\" = 1 ]; then\n  case {mode} in\n    once) if [ ! -e \"{mark}\" ]; then : > \"{mark}\"; echo 'injected failure' >&2; exit 1; fi ;;\n    always) echo 'injected: cannot be done' > \"$NAS_TERMINATION_LOG\"; exit 3 ;;\n  esac\nfi\nexec \"{real}\" \"$@\"\n",
            mark = dir.join("failed-once").display(),
            real = binary("nas-runner").display(),
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    RunnerSetup {
        executable: script,
        env: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_that_fails_once_is_retried_and_the_search_completes() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(failing_runner(scratch.path(), "once")).await;
    cluster
        .apply(&search_yaml(&cluster, "team-c", "flaky", ""))
        .await;
    let s = cluster.wait_ended("team-c", "flaky", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &s);
    assert!(
        scratch.path().join("failed-once").exists(),
        "the failure was never injected"
    );
    assert_eq!(
        cluster.runner_launches("team-c", "score"),
        3,
        "index 1 ran twice, index 0 once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_that_always_fails_ends_the_search_failed_and_keeps_other_shards() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(failing_runner(scratch.path(), "always")).await;
    // One score pod at a time: shard 0 finishes before shard 1 fails the Job.
    let serial = "  resources: {score: {parallelism: 1}}\n";
    let s = cluster
        .apply(&search_yaml(&cluster, "team-d", "doomed", serial))
        .await;
    let s2 = cluster.wait_ended("team-d", "doomed", SEARCH_TIMEOUT).await;
    let st = s2.status.as_ref().unwrap();
    assert_eq!(st.phase, Phase::Failed, "{st:?}");
    let reasons = serde_json::to_string(&st.conditions).unwrap()
        + &serde_json::to_string(&st.stages).unwrap();
    assert!(
        reasons.contains("score"),
        "no reason names the score stage: {reasons}"
    );
    // Exit 3 fails the index without retrying it.
    assert_eq!(cluster.runner_launches("team-d", "score"), 2);
    assert!(
        cluster
            .object(&format!("{}score/shard-00000._SUCCESS", root(&s)))
            .exists(),
        "status {}\n{}",
        serde_json::to_string_pretty(st).unwrap(),
        cluster.operator_log()
    );
    assert!(cluster
        .object(&format!("{}score/shard-00000.jsonl", root(&s)))
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_is_not_accepted_and_the_message_names_the_field() {
    let cluster = Cluster::start(RunnerSetup::default()).await;
    let yaml = search_yaml(&cluster, "team-e", "bad", "").replace("topK: 2", "topK: 0");
    cluster.apply(&yaml).await;
    let s = cluster
        .wait_for("team-e", "bad", Duration::from_secs(60), "rejected", |s| {
            s.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Accepted" && c.status == "False")
            })
        })
        .await;
    let st = s.status.unwrap();
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert!(c.message.contains("topK"), "{c:?}");
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "team-e");
    assert!(jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_search_mid_run_removes_its_jobs() {
    let cluster = Cluster::start(RunnerSetup::default()).await;
    cluster
        .apply(&search_yaml(&cluster, "team-f", "gone", ""))
        .await;
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "team-f");
    let mut seen = false;
    for _ in 0..600 {
        if !jobs
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "no Job was created\n{}", cluster.operator_log());
    cluster.delete("team-f", "gone").await;
    for _ in 0..300 {
        let left = jobs.list(&ListParams::default()).await.unwrap().items;
        // No Job, no search, and no runner process of the search left running.
        let running = cluster
            .jobs
            .runs()
            .iter()
            .any(|r| r.exit_code.is_none() && r.pid.is_some());
        if left.is_empty() && !running && cluster.get("team-f", "gone").await.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "Jobs left after deleting the search\n{}",
        cluster.operator_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_searches_of_one_name_in_two_namespaces_keep_their_artifacts_apart() {
    let cluster = Cluster::start(RunnerSetup::default()).await;
    let a = cluster
        .apply(&search_yaml(&cluster, "team-g", "twin", ""))
        .await;
    let b = cluster
        .apply(&search_yaml(&cluster, "team-h", "twin", ""))
        .await;
    assert_ne!(root(&a), root(&b));
    let a = cluster.wait_ended("team-g", "twin", SEARCH_TIMEOUT).await;
    let b = cluster.wait_ended("team-h", "twin", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &a);
    assert_succeeded(&cluster, &b);
    for s in [&a, &b] {
        let spec: nas_api::resolved::ResolvedSpec = serde_json::from_str(
            &std::fs::read_to_string(cluster.object(&format!("{}spec.json", root(s)))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            Some(spec.namespace.as_str()),
            s.metadata.namespace.as_deref()
        );
        assert_eq!(Some(spec.uid.as_str()), s.metadata.uid.as_deref());
    }
}

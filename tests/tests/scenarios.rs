//! End-to-end scenarios of a search's life: the real `nas-operator` and `nas-runner` binaries on
//! a real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with the
//! process kubelet and an in-process S3 server, on a small generated data set in the CIFAR-10
//! JPEG layout. Each test is one scenario, in namespaces of its own.
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use nas_api::contract::{Outcome, TerminationSummary};
use nas_api::crd::Phase;
use nas_e2e::cluster::{Cluster, RunnerSetup};
use nas_e2e::scenario::*;
use nas_e2e::tools;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_on_cifar10_goes_from_apply_to_succeeded() {
    let cluster = Cluster::start(&["team-a"], RunnerSetup::default()).await;
    cluster
        .apply(&search_yaml(&cluster, "team-a", "c10", ""))
        .await;
    // `kubectl wait` returns once the search has succeeded, as a user's CI would use it.
    let kubeconfig = cluster.admin_kubeconfig().to_path_buf();
    let timeout = format!("--timeout={}s", SEARCH_TIMEOUT.as_secs());
    let waited = tokio::task::spawn_blocking(move || {
        tools::run(
            "kubectl",
            &kubeconfig,
            &[
                "wait",
                "--for=condition=Succeeded",
                "nassearch/c10",
                "-n",
                "team-a",
                &timeout,
            ],
        )
    })
    .await
    .unwrap();
    assert!(
        waited.ok,
        "kubectl wait: {waited:?}\n{}",
        cluster.diagnostics("team-a")
    );
    let s = cluster.wait_ended("team-a", "c10", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &s);
    // One pod per index and stage: nothing ran twice.
    assert_eq!(cluster.runner_launches("team-a", "score"), 2);
    assert_eq!(cluster.runner_launches("team-a", "train"), 2);
    assert_eq!(s.status.as_ref().unwrap().candidates_scored, Some(6));

    // What `kubectl get nas -o wide` and `kubectl describe` show a user.
    let wide = cluster
        .kubectl(&["get", "nas", "-n", "team-a", "-o", "wide"])
        .expect_ok("kubectl get nas -o wide");
    let best = &s.status.as_ref().unwrap().best.as_ref().unwrap().arch;
    for column in [
        "PHASE",
        "STAGE",
        "SCORED",
        "BEST",
        "RESULTS",
        "Succeeded",
        "summary.json",
    ] {
        assert!(wide.contains(column), "no {column} in:\n{wide}");
    }
    assert!(
        wide.contains(best.as_str()),
        "the winner {best} is not shown:\n{wide}"
    );
    let described = cluster
        .kubectl(&["describe", "nassearch", "c10", "-n", "team-a"])
        .expect_ok("kubectl describe");
    let events = described.split("Events:").nth(1).unwrap_or_default();
    assert!(
        events.contains("nas-operator") || events.contains("Succeeded") || events.contains("Stage"),
        "describe shows none of the operator's events:\n{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_killed_mid_search_resumes_without_recomputing_shards() {
    let mut cluster = Cluster::start(&["team-b"], RunnerSetup::default()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_that_fails_once_is_retried_and_the_search_completes() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&["team-c"], failing_runner(scratch.path(), "once")).await;
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
    let cluster = Cluster::start(&["team-d"], failing_runner(scratch.path(), "always")).await;
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
    // The real Job controller failed index 1 only (FailIndex) and kept index 0's success.
    let job = score_job(&cluster, "team-d").await;
    let js = job.status.unwrap_or_default();
    assert_eq!(js.failed_indexes.as_deref(), Some("1"), "{js:?}");
    assert_eq!(js.completed_indexes.as_deref(), Some("0"), "{js:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_exit_fails_the_job_at_once_without_retries() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&["team-i"], failing_runner(scratch.path(), "config")).await;
    cluster
        .apply(&search_yaml(&cluster, "team-i", "misconfigured", ""))
        .await;
    let s = cluster
        .wait_ended("team-i", "misconfigured", SEARCH_TIMEOUT)
        .await;
    let st = s.status.as_ref().unwrap();
    assert_eq!(st.phase, Phase::Failed, "{st:?}");
    let index1 = cluster
        .runs("team-i")
        .iter()
        .filter(|r| r.job.as_deref().is_some_and(|j| j.contains("-score-")) && r.index == Some(1))
        .count();
    assert_eq!(index1, 1, "exit 2 was retried");
    let job = score_job(&cluster, "team-i").await;
    let failed = job
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .expect("the score Job failed");
    assert_eq!(
        failed.reason.as_deref(),
        Some("PodFailurePolicy"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_removed_at_once_by_their_ttl_still_let_the_search_complete() {
    let cluster = Cluster::start(&["team-j"], RunnerSetup::default()).await;
    cluster
        .apply(&search_yaml(
            &cluster,
            "team-j",
            "ephemeral",
            "  ttlSecondsAfterFinished: 0\n",
        ))
        .await;
    let s = cluster
        .wait_ended("team-j", "ephemeral", SEARCH_TIMEOUT)
        .await;
    assert_succeeded(&cluster, &s);
    assert_eq!(s.status.as_ref().unwrap().candidates_scored, Some(6));
    // A Job the TTL controller removed before the operator saw it finish is started again
    // (as often as that race is lost: not bounded here); its pods find the stage's `_SUCCESS`
    // markers and redo nothing, which the scored count above shows.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_search_mid_run_removes_its_jobs() {
    let cluster = Cluster::start(&["team-f"], RunnerSetup::default()).await;
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
    for _ in 0..1200 {
        let left = jobs.list(&ListParams::default()).await.unwrap().items;
        // No Job, no search, and no runner process of the search left running.
        let running = cluster
            .runs("team-f")
            .iter()
            .any(|r| r.exit_code.is_none() && r.pid.is_some());
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "team-f");
        let pods_left = pods.list(&ListParams::default()).await.unwrap().items;
        if left.is_empty()
            && pods_left.is_empty()
            && !running
            && cluster.get("team-f", "gone").await.is_none()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "Jobs or pods left after deleting the search\n{}",
        cluster.diagnostics("team-f")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_searches_of_one_name_in_two_namespaces_keep_their_artifacts_apart() {
    let cluster = Cluster::start(&["team-g", "team-h"], RunnerSetup::default()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_suspended_mid_score_and_resumed_completes_without_rerunning_stages() {
    let cluster = Cluster::start(&["team-k"], RunnerSetup::default()).await;
    // Enough candidates that the suspension finds the score pods at work.
    let yaml = search_yaml(&cluster, "team-k", "paused", "").replace(
        "candidates: 6,",
        &format!("candidates: {SUSPENDED_CANDIDATES},"),
    );
    assert!(yaml.contains(&format!("candidates: {SUSPENDED_CANDIDATES},")));
    cluster.apply(&yaml).await;
    let scoring = |c: &Cluster| {
        c.runs("team-k")
            .iter()
            .any(|r| r.job.as_deref().is_some_and(|j| j.contains("-score-")))
    };
    for _ in 0..1200 {
        if scoring(&cluster) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        scoring(&cluster),
        "scoring never started\n{}",
        cluster.diagnostics("team-k")
    );
    // Past the runner's start (a process killed while the dynamic loader maps libtorch has no
    // handler yet), into its data loading or first candidates.
    tokio::time::sleep(SCORE_STARTUP).await;
    // Suspend (generation 2), wait for the Job to be suspended, resume (generation 3).
    cluster.apply(&format!("{yaml}  suspend: true\n")).await;
    let job_suspended = async {
        for _ in 0..600 {
            let job = score_job(&cluster, "team-k").await;
            if job.spec.as_ref().and_then(|s| s.suspend) == Some(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(
        job_suspended.await,
        "the score Job was never suspended\n{}",
        cluster.diagnostics("team-k")
    );
    cluster.apply(&yaml).await;
    let s = cluster.wait_ended("team-k", "paused", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &s);
    for (stage, n) in [
        ("stage-data", 1),
        ("select", 1),
        ("train", 2),
        ("evaluate", 1),
        ("report", 1),
    ] {
        assert_eq!(
            cluster.runner_launches("team-k", stage),
            n,
            "{stage} ran again"
        );
    }
    assert_suspension_cost_nothing(&cluster, "team-k").await;
    assert_eq!(
        s.status.and_then(|st| st.candidates_scored),
        Some(u64::from(SUSPENDED_CANDIDATES))
    );
}

/// Candidates of the suspended search.
const SUSPENDED_CANDIDATES: u32 = 60;
/// Time from a score pod's start until its runner handles SIGTERM, with room to spare.
const SCORE_STARTUP: Duration = Duration::from_secs(3);

/// The suspension stopped score pods (exit 143) that counted against no index, and each
/// stopped pod's finished candidates were kept by the shard's next pod.
async fn assert_suspension_cost_nothing(cluster: &Cluster, ns: &str) {
    let summary = |r: &nas_e2e::kubelet::RunRecord| {
        r.message
            .as_deref()
            .and_then(|m| serde_json::from_str::<TerminationSummary>(m).ok())
    };
    let mut runs: Vec<_> = cluster
        .runs(ns)
        .into_iter()
        .filter(|r| r.job.as_deref().is_some_and(|j| j.contains("-score-")))
        .collect();
    runs.sort_by_key(|r| r.index);
    let stopped: Vec<_> = runs.iter().filter(|r| r.exit_code == Some(143)).collect();
    assert!(
        !stopped.is_empty(),
        "the suspension stopped no score pod: {runs:#?}"
    );
    // A pod deleted before its process started (no pid) ran nothing.
    for r in runs.iter().filter(|r| r.pid.is_some()) {
        assert!(
            matches!(r.exit_code, Some(0) | Some(143)),
            "a score pod failed: {r:#?}"
        );
    }
    // A pod stopped before its handler was installed ends without a summary (still 143, still
    // not counted); every pod stopped after says what it kept.
    let summarised: Vec<_> = stopped
        .iter()
        .filter(|r| r.message.as_deref().is_some_and(|m| !m.is_empty()))
        .collect();
    assert!(
        !summarised.is_empty(),
        "no stopped score pod wrote its summary: {stopped:#?}"
    );
    for stop in summarised {
        let s = summary(stop).unwrap_or_else(|| panic!("no summary: {stop:#?}"));
        assert_eq!(s.outcome, Outcome::Interrupted, "{s:?}");
        // "stopped on request after N of M candidates"
        let kept: f64 = s
            .message
            .split("after ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0); // stopped before its first candidate (the watchdog's summary)
        let last = runs
            .iter()
            .filter(|r| r.index == stop.index && r.exit_code == Some(0))
            .filter_map(summary)
            .next_back()
            .unwrap_or_else(|| panic!("shard {:?} never finished", stop.index));
        let resumed = last.values.get("resumed").copied().unwrap_or(0.0);
        assert!(
            resumed >= kept,
            "shard {:?}: {kept} candidates were finished before the stop, the next pod kept {resumed}",
            stop.index
        );
    }
    let job = score_job(cluster, ns).await;
    let st = job.status.unwrap_or_default();
    assert_eq!(st.failed.unwrap_or(0), 0, "pods counted failed: {st:?}");
    assert!(
        st.failed_indexes.as_deref().unwrap_or("").is_empty(),
        "indexes counted failed: {st:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_search_with_delete_artifacts_removes_its_artifacts_and_then_itself() {
    let cluster = Cluster::start(&["team-l"], RunnerSetup::default()).await;
    let extra = "  deleteArtifactsOnDeletion: true\n";
    let s = cluster
        .apply(&search_yaml(&cluster, "team-l", "tidy", extra))
        .await;
    let s2 = cluster.wait_ended("team-l", "tidy", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &s2);
    let summary = cluster.object(&format!("{}summary.json", root(&s)));
    assert!(summary.exists());
    cluster.delete("team-l", "tidy").await;
    assert_cleaned_up_and_gone(&cluster, "team-l", "tidy", &summary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_searches_with_a_long_common_name_start_and_equal_specs_run_apart() {
    let cluster = Cluster::start(&["team-q"], RunnerSetup::default()).await;
    // Object names are cut to fit 52 characters: these two share what is left of them.
    let prefix = "a-search-name-long-enough-to-be-cut-in-jobs";
    let names = [format!("{prefix}-one"), format!("{prefix}-two")];
    for n in &names {
        cluster.apply(&search_yaml(&cluster, "team-q", n, "")).await;
    }
    for n in &names {
        let s = cluster.wait_ended("team-q", n, SEARCH_TIMEOUT).await;
        assert_succeeded(&cluster, &s);
    }
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "team-q");
    let all = jobs.list(&ListParams::default()).await.unwrap().items;
    for n in &names {
        let owned = all
            .iter()
            .filter(|j| {
                j.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| &o.name == n)
            })
            .count();
        assert_eq!(owned, 6, "{n} does not own its six stage Jobs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_changed_mid_stage_and_back_completes_on_the_final_spec() {
    let cluster = Cluster::start(&["team-t"], RunnerSetup::default()).await;
    let a = search_yaml(&cluster, "team-t", "flipflop", "");
    let b = a.replace("angleLossSteps: 5", "angleLossSteps: 6");
    cluster.apply(&a).await;
    let started = |c: &Cluster, n: usize| {
        c.runs("team-t")
            .iter()
            .filter(|r| r.job.as_deref().is_some_and(|j| j.contains("-stage-data-")))
            .count()
            >= n
    };
    for (yaml, n) in [(&b, 1), (&a, 2)] {
        for _ in 0..1200 {
            if started(&cluster, n) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Spec A's (then B's) first stage is running or done: change the spec.
        cluster.apply(yaml).await;
    }
    let s = cluster
        .wait_ended("team-t", "flipflop", SEARCH_TIMEOUT)
        .await;
    assert_succeeded(&cluster, &s);
    // The Jobs left are those of spec A, the one applied last, and their pods are A's.
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "team-t");
    let hashes: std::collections::BTreeSet<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|j| {
            j.metadata
                .labels
                .as_ref()?
                .get("nas.example.dev/spec-hash")
                .cloned()
        })
        .collect();
    assert_eq!(hashes.len(), 1, "Jobs of an old spec are left: {hashes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreground_deletion_of_a_search_that_cleans_its_artifacts_finishes() {
    let cluster = Cluster::start(&["team-v"], RunnerSetup::default()).await;
    let extra = "  deleteArtifactsOnDeletion: true\n";
    let s = cluster
        .apply(&search_yaml(&cluster, "team-v", "fg", extra))
        .await;
    let done = cluster.wait_ended("team-v", "fg", SEARCH_TIMEOUT).await;
    assert_succeeded(&cluster, &done);
    let summary = cluster.object(&format!("{}summary.json", root(&s)));
    // The garbage collector deletes the search's dependents first; the cleanup Job is none.
    cluster
        .kubectl(&[
            "delete",
            "nassearch",
            "fg",
            "-n",
            "team-v",
            "--cascade=foreground",
            "--wait=false",
        ])
        .expect_ok("kubectl delete --cascade=foreground");
    assert_cleaned_up_and_gone(&cluster, "team-v", "fg", &summary).await;
}

/// Waits (up to 3 minutes) for the search to be gone, then checks that its cleanup Job ran
/// once and took `artifact` with the rest.
async fn assert_cleaned_up_and_gone(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    artifact: &std::path::Path,
) {
    for _ in 0..1800 {
        if cluster.get(ns, name).await.is_none() {
            assert!(
                !artifact.exists(),
                "the search is gone but its artifacts are not"
            );
            assert_eq!(cluster.runner_launches(ns, "cleanup"), 1);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the search was never deleted\n{}", cluster.diagnostics(ns));
}

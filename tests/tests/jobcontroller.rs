//! The Job controller double against the API server double: indexed Jobs with parallelism,
//! termination messages, podFailurePolicy, backoffLimitPerIndex, maxFailedIndexes, backoffLimit,
//! suspension, disruption and deletion.
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use nas_e2e::apiserver::{ApiServer, ApiServerConfig};
use nas_e2e::jobcontroller::{JobController, JobControllerConfig};
use serde_json::{json, Value};

struct Env {
    server: ApiServer,
    ctl: JobController,
    jobs: Api<Job>,
    pods: Api<Pod>,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let server = ApiServer::start(ApiServerConfig::default()).await.unwrap();
    let client = server.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = JobControllerConfig::new(dir.path().join("pods"));
    let ctl = JobController::start(client.clone(), cfg);
    Env {
        jobs: Api::namespaced(client.clone(), "e2e"),
        pods: Api::namespaced(client, "e2e"),
        server,
        ctl,
        dir,
    }
}

/// A Job running `sh -c script`; `extra` is merged into the spec.
fn job(name: &str, script: &str, extra: Value) -> Job {
    let mut spec = json!({
        "template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c", script],
            "terminationMessagePath": "/dev/termination-log"
        }]}}
    });
    json_patch::merge(&mut spec, &extra);
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// Waits (bounded, 30 s) for the Job to carry a true condition of one of these types.
async fn finished(jobs: &Api<Job>, name: &str) -> (String, Value) {
    for _ in 0..600 {
        let j = jobs.get(name).await.unwrap();
        let status = serde_json::to_value(&j.status).unwrap();
        for c in status["conditions"].as_array().cloned().unwrap_or_default() {
            if matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True" {
                return (c["type"].as_str().unwrap().to_string(), status);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {name} did not finish in 30 s");
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn indexed_job_runs_each_index_with_parallelism_and_records_messages() {
    let e = env().await;
    let script =
        "printf '{\"index\":%s}' \"$JOB_COMPLETION_INDEX\" > /dev/termination-log; sleep 0.2";
    let j = job(
        "idx",
        script,
        json!({"completionMode": "Indexed", "completions": 4, "parallelism": 2}),
    );
    e.jobs.create(&PostParams::default(), &j).await.unwrap();
    let (kind, status) = finished(&e.jobs, "idx").await;
    assert_eq!(kind, "Complete");
    assert_eq!(status["completedIndexes"], "0-3");
    assert_eq!(status["succeeded"], 4);
    assert_eq!(status["failed"], 0);
    assert_eq!(status["active"], 0);
    assert!(status["completionTime"].is_string());
    assert_eq!(
        condition(&status, "SuccessCriteriaMet")["reason"],
        "CompletionsReached"
    );
    assert_eq!(
        condition(&status, "Complete")["reason"],
        "CompletionsReached"
    );
    for i in 0..4 {
        assert_eq!(e.ctl.run_count("e2e", "idx", Some(i)), 1);
    }
    assert_eq!(e.ctl.max_active("e2e", "idx"), 2);

    let pods = e
        .pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=idx"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 4);
    for p in pods.items {
        let idx = p.metadata.annotations.as_ref().unwrap()
            ["batch.kubernetes.io/job-completion-index"]
            .clone();
        let st = p.status.unwrap();
        assert_eq!(st.phase.as_deref(), Some("Succeeded"));
        let term = st.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(term.exit_code, 0);
        assert_eq!(term.message.unwrap(), format!("{{\"index\":{idx}}}"));
        assert_eq!(p.metadata.owner_references.unwrap()[0].kind, "Job");
    }
    drop(e.dir);
}

#[tokio::test]
async fn fail_index_on_exit_code_3_is_not_retried() {
    let e = env().await;
    let script = "[ \"$JOB_COMPLETION_INDEX\" = 1 ] && exit 3; exit 0";
    let extra = json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3, "backoffLimitPerIndex": 2,
    "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}},
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}
    ]}});
    e.jobs
        .create(&PostParams::default(), &job("fi", script, extra))
        .await
        .unwrap();
    let (kind, status) = finished(&e.jobs, "fi").await;
    assert_eq!(kind, "Failed");
    assert_eq!(condition(&status, "Failed")["reason"], "FailedIndexes");
    assert_eq!(status["failedIndexes"], "1");
    assert_eq!(status["completedIndexes"], "0,2");
    assert_eq!(status["failed"], 1);
    assert_eq!(e.ctl.run_count("e2e", "fi", Some(1)), 1);
}

#[tokio::test]
async fn backoff_limit_per_index_retries_then_fails_the_index() {
    let e = env().await;
    let marker = e.dir.path().join("ran-once");
    // Index 0 fails on its first run only; index 1 always fails.
    let script = format!(
        "if [ \"$JOB_COMPLETION_INDEX\" = 0 ]; then [ -e {m} ] && exit 0; touch {m}; exit 1; fi; exit 1",
        m = marker.display()
    );
    let extra = json!({"completionMode": "Indexed", "completions": 2, "parallelism": 2, "backoffLimitPerIndex": 1});
    e.jobs
        .create(&PostParams::default(), &job("retry", &script, extra))
        .await
        .unwrap();
    let (kind, status) = finished(&e.jobs, "retry").await;
    assert_eq!(kind, "Failed");
    assert_eq!(status["completedIndexes"], "0");
    assert_eq!(status["failedIndexes"], "1");
    assert_eq!(status["failed"], 3);
    assert_eq!(e.ctl.run_count("e2e", "retry", Some(0)), 2);
    assert_eq!(e.ctl.run_count("e2e", "retry", Some(1)), 2);
}

#[tokio::test]
async fn max_failed_indexes_fails_the_job_early() {
    let e = env().await;
    let extra = json!({"completionMode": "Indexed", "completions": 5, "parallelism": 1,
        "backoffLimitPerIndex": 0, "maxFailedIndexes": 0});
    e.jobs
        .create(&PostParams::default(), &job("maxf", "exit 1", extra))
        .await
        .unwrap();
    let (kind, status) = finished(&e.jobs, "maxf").await;
    assert_eq!(kind, "Failed");
    assert_eq!(
        condition(&status, "Failed")["reason"],
        "MaxFailedIndexesExceeded"
    );
    assert_eq!(
        condition(&status, "FailureTarget")["reason"],
        "MaxFailedIndexesExceeded"
    );
    assert_eq!(e.ctl.runs().len(), 1, "no index after the first failure");
}

#[tokio::test]
async fn fail_job_rule_stops_the_other_pods() {
    let e = env().await;
    let script = "[ \"$JOB_COMPLETION_INDEX\" = 0 ] && exit 2; sleep 30";
    let extra = json!({"completionMode": "Indexed", "completions": 2, "parallelism": 2,
        "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]}}]}});
    e.jobs
        .create(&PostParams::default(), &job("fj", script, extra))
        .await
        .unwrap();
    let (kind, status) = finished(&e.jobs, "fj").await;
    assert_eq!(kind, "Failed");
    let failed = condition(&status, "Failed");
    assert_eq!(failed["reason"], "PodFailurePolicy");
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .contains("failed with exit code 2 matching FailJob rule at index 0"));
    assert_eq!(status["active"], 0);
    let sleeper = e
        .ctl
        .runs()
        .into_iter()
        .find(|r| r.index == Some(1))
        .unwrap();
    assert_ne!(sleeper.exit_code, Some(0), "the sleeping pod was stopped");
}

#[tokio::test]
async fn ignore_rule_and_backoff_limit_on_a_non_indexed_job() {
    let e = env().await;
    let marker = e.dir.path().join("ignored-once");
    let script = format!(
        "[ -e {m} ] && exit 0; touch {m}; exit 5",
        m = marker.display()
    );
    let extra = json!({"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [5]}}]}});
    e.jobs
        .create(&PostParams::default(), &job("ign", &script, extra))
        .await
        .unwrap();
    let (kind, status) = finished(&e.jobs, "ign").await;
    assert_eq!(kind, "Complete");
    assert_eq!(status["failed"], 0, "ignored failures are not counted");
    assert_eq!(e.ctl.run_count("e2e", "ign", None), 2);

    e.jobs
        .create(
            &PostParams::default(),
            &job("bl", "exit 1", json!({"backoffLimit": 2})),
        )
        .await
        .unwrap();
    let (kind, status) = finished(&e.jobs, "bl").await;
    assert_eq!(kind, "Failed");
    assert_eq!(
        condition(&status, "Failed")["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(status["failed"], 3);
    assert_eq!(e.ctl.run_count("e2e", "bl", None), 3);
}

#[tokio::test]
async fn suspended_jobs_run_nothing_until_resumed() {
    let e = env().await;
    e.jobs
        .create(
            &PostParams::default(),
            &job("sus", "exit 0", json!({"suspend": true})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.ctl.run_count("e2e", "sus", None), 0);
    e.jobs
        .patch(
            "sus",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .unwrap();
    let (kind, status) = finished(&e.jobs, "sus").await;
    assert_eq!(kind, "Complete");
    assert_eq!(condition(&status, "Suspended")["reason"], "JobResumed");
    assert_eq!(e.ctl.run_count("e2e", "sus", None), 1);
}

#[tokio::test]
async fn disruption_target_rule_ignores_evictions() {
    let e = env().await;
    let marker = e.dir.path().join("evicted-once");
    let script = format!(
        "[ -e {m} ] && exit 0; touch {m}; sleep 30",
        m = marker.display()
    );
    let extra = json!({"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}});
    e.jobs
        .create(&PostParams::default(), &job("dis", &script, extra))
        .await
        .unwrap();
    let mut pod = None;
    for _ in 0..200 {
        if marker.exists() {
            pod = e.ctl.runs().first().map(|r| r.pod.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(e.ctl.disrupt("e2e", &pod.expect("first pod started")).await);
    let (kind, status) = finished(&e.jobs, "dis").await;
    assert_eq!(kind, "Complete");
    assert_eq!(status["failed"], 0);
    assert_eq!(e.ctl.run_count("e2e", "dis", None), 2);
}

#[tokio::test]
async fn deleting_a_job_kills_its_processes_and_cascades_to_pods() {
    let e = env().await;
    let pidfile = e.dir.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    e.jobs
        .create(&PostParams::default(), &job("del", &script, json!({})))
        .await
        .unwrap();
    for _ in 0..200 {
        if std::fs::read_to_string(&pidfile).is_ok_and(|s| !s.trim().is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    e.jobs
        .delete("del", &DeleteParams::background())
        .await
        .unwrap();
    for _ in 0..200 {
        let gone = e.ctl.runs().first().is_some_and(|r| r.exit_code.is_some());
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let run = e.ctl.runs().first().cloned().unwrap();
    assert_eq!(run.exit_code, Some(143), "stopped with SIGTERM");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "process {pid} is gone"
    );
    assert!(
        e.server.objects("", "pods", Some("e2e")).is_empty(),
        "pods cascaded with the job"
    );
}

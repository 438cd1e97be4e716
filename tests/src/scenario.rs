//! What the scenarios share: a tiny search on the CIFAR-10 cut, the checks of a finished one, a
//! stand-in runner that fails on purpose, and waits on what the status and the Jobs say.
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use nas_api::crd::{NASSearch, Phase};

use crate::cluster::{binary, cifar10_like, Cluster, RunnerSetup, S3_SECRET};

/// Long enough for a whole tiny search on 2 cores, with room for a loaded CI machine.
pub const SEARCH_TIMEOUT: Duration = Duration::from_secs(420);

/// A tiny search; `extra` holds more `spec` fields (indented YAML lines).
pub fn search_yaml(cluster: &Cluster, ns: &str, name: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata: {{name: {name}, namespace: {ns}}}
spec:
  runner: {{image: "{image}"}}
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
    credentials: {{secretRef: {{name: {secret}}}}}
{extra}"#,
        data = cifar10_like(30).display(),
        endpoint = cluster.s3_endpoint(),
        image = cluster.runner_image,
        secret = S3_SECRET,
    )
}

/// The search's phase (Pending when it has no status yet).
pub fn phase(s: &NASSearch) -> Phase {
    s.status.as_ref().map(|st| st.phase).unwrap_or_default()
}

/// The search's artifact root in the bucket: `runs/{ns}/{name}/{uid}/`.
pub fn root(s: &NASSearch) -> String {
    format!(
        "runs/{}/{}/{}/",
        s.metadata.namespace.as_deref().unwrap_or_default(),
        s.metadata.name.as_deref().unwrap_or_default(),
        s.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Asserts that the search succeeded: `summary.json` is in the bucket and names the winner the
/// status holds.
pub fn assert_succeeded(cluster: &Cluster, s: &NASSearch) {
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

/// A stand-in for `nas-runner` that fails score index 1: once (exit 1, retried), always
/// (exit 3, this index cannot be done) or as an invalid configuration (exit 2).
pub fn failing_runner(dir: &std::path::Path, mode: &str) -> RunnerSetup {
    let script: PathBuf = dir.join("nas-runner-failing");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$NAS_STAGE\" = score ] && [ \"$JOB_COMPLETION_INDEX\" = 1 ]; then\n  case {mode} in\n    once) if [ ! -e \"{mark}\" ]; then : > \"{mark}\"; echo 'injected failure' >&2; exit 1; fi ;;\n    always) echo 'injected: cannot be done' > \"$NAS_TERMINATION_LOG\"; exit 3 ;;\n    config) echo 'injected: invalid configuration' > \"$NAS_TERMINATION_LOG\"; exit 2 ;;\n  esac\nfi\nexec \"{real}\" \"$@\"\n",
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
    RunnerSetup { executable: script }
}

/// Asserts that `ns` has no Job.
pub async fn assert_no_jobs(cluster: &Cluster, ns: &str) {
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), ns);
    let items = jobs.list(&ListParams::default()).await.unwrap().items;
    assert!(
        items.is_empty(),
        "{ns} has Jobs:\n{}",
        cluster.diagnostics(ns)
    );
}

/// The score Job of the one search in `ns`.
pub async fn score_job(cluster: &Cluster, ns: &str) -> Job {
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), ns);
    jobs.list(&ListParams::default().labels("nas.example.dev/stage=score"))
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no score Job in {ns}\n{}", cluster.diagnostics(ns)))
}

/// Waits until the search's Progressing condition has `reason`; returns its message.
pub async fn progressing_reason(cluster: &Cluster, ns: &str, name: &str, reason: &str) -> String {
    let s = cluster
        .wait_for(ns, name, Duration::from_secs(120), reason, |s| {
            s.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Progressing" && c.reason == reason)
            })
        })
        .await;
    let st = s.status.unwrap();
    st.conditions
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .map(|c| c.message)
        .unwrap_or_default()
}

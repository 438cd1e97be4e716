//! The stage commands as the operator runs them, for the tests of `stage_commands.rs` and
//! `stop_on_request.rs`: a real S3 protocol server (s3s + s3s-fs, in-process), a small cut of
//! the real Fashion-MNIST, resolved specs as the operator's ConfigMap mount, one process per pod.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};

use nas_api::contract::{Outcome, TerminationSummary};
use nas_api::records::ScoreRecord;
use nas_api::resolved::ResolvedSpec;
use nas_runner::store::testing::{
    S3TestConfig, S3TestServer, TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY,
};
use nas_runner::store::{ObjectStore, S3Store};

pub const BUCKET: &str = "nas-test";

/// A test's own S3 server, a Fashion-MNIST cut (400 train, 200 test images) and a folder.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub server: S3TestServer,
    pub data: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = S3TestServer::start(&dir.path().join("s3")).unwrap();
        server.create_bucket(BUCKET).unwrap();
        let data = dir.path().join("fashion");
        crate::train_util::fashion_subset(&data, "train", 400);
        crate::train_util::fashion_subset(&data, "t10k", 200);
        Fixture { dir, server, data }
    }

    /// A resolved spec for search `uid` written to a local file (as the operator's ConfigMap
    /// mount), with `edit` applied to its YAML first.
    pub fn spec(
        &self,
        uid: &str,
        candidates: u32,
        edit: &dyn Fn(String) -> String,
    ) -> (PathBuf, ResolvedSpec) {
        let yaml = format!(
            r#"
apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata: {{name: tiny, namespace: team-a, uid: {uid}}}
spec:
  runner: {{image: nas-runner:test}}
  dataset: {{source: "{data}", format: fashionMnist, resolution: 28}}
  space: {{name: nb201, channels: 4, cells: 1}}
  sampling: {{candidates: {candidates}, seed: 3, shards: 2}}
  metrics: {{names: [angle_loss, params, synflow], angleLossSteps: 5}}
  selection: {{topK: 2}}
  train: {{preset: short, overrides: {{epochs: 1, batchSize: 64}}}}
  evaluate: {{preset: nb201, overrides: {{epochs: 1, batchSize: 64}}}}
  artifacts:
    bucket: {BUCKET}
    prefix: runs
    endpoint: "{endpoint}"
    forcePathStyle: true
    credentials: {{fromEnvironment: true}}
"#,
            data = self.data.display(),
            endpoint = self.server.endpoint(),
        );
        let resolved = ResolvedSpec::from_yaml(&edit(yaml)).expect("test spec is valid");
        let path = self.dir.path().join(format!("spec-{uid}.json"));
        std::fs::write(&path, resolved.to_json()).unwrap();
        (path, resolved)
    }

    /// The bucket, for reading artifacts.
    pub fn bucket(&self) -> S3Store {
        S3Store::open(self.server.config(BUCKET)).unwrap()
    }
}

/// `nas-runner <stage> --spec <spec> --device cpu` with the test server's credentials.
pub fn runner(stage: &str, spec: &Path) -> Command {
    let mut cmd = test_server_credentials();
    cmd.arg(stage)
        .arg("--spec")
        .arg(spec)
        .args(["--device", "cpu"])
        .env_remove("AWS_ENDPOINT_URL")
        .env("NAS_SCRATCH", std::env::temp_dir());
    cmd
}

/// `nas-runner results URI --out OUT` as a user runs it: the S3 settings from the environment
/// (the test server's endpoint and keys).
pub fn results(f: &Fixture, uri: &str, out: &Path) -> Output {
    test_server_credentials()
        .args(["results", uri, "--out"])
        .arg(out)
        .env("AWS_ENDPOINT_URL", f.server.endpoint())
        .env("AWS_S3_FORCE_PATH_STYLE", "true")
        .output()
        .unwrap()
}

/// `nas-runner` with the test server's keys and quick retries.
fn test_server_credentials() -> Command {
    let mut cmd = crate::bin_util::nas_runner::<&str>(&[]);
    cmd.env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
        .env("AWS_REGION", TEST_REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NAS_S3_MAX_ATTEMPTS", "3")
        .env("NAS_S3_RETRY_BASE_MS", "20");
    cmd
}

/// One pod: the stage's process, its termination summary checked against its exit code.
pub fn stage(
    stage: &str,
    spec: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Output, TerminationSummary) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = runner(stage, spec);
    cmd.args(args)
        .args(["--quiet", "--log-format", "json", "--termination-log"])
        .arg(log.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let summary = summary_of(stage, &out, log.path());
    (out, summary)
}

/// The pod's termination summary: the same on stdout and in the termination-message file,
/// within Kubernetes' 4 KiB, its exit code the process's.
fn summary_of(stage: &str, out: &Output, log: &Path) -> TerminationSummary {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let message = std::fs::read_to_string(log).unwrap();
    assert_eq!(
        stdout.trim(),
        message.trim(),
        "stdout and the termination message differ"
    );
    assert!(message.len() <= 4096);
    let summary: TerminationSummary = serde_json::from_str(&message).unwrap_or_else(|e| {
        panic!(
            "{stage}: termination message is not a summary ({e}): {message}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(Some(summary.exit_code), out.status.code(), "{message}");
    summary
}

pub fn ok(stage_name: &str, spec: &Path, args: &[&str]) -> TerminationSummary {
    let (out, s) = stage(stage_name, spec, args, &[]);
    assert!(
        out.status.success(),
        "{stage_name} {args:?} failed: {s:?}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

pub fn get(store: &dyn ObjectStore, root: &str, key: &str) -> Vec<u8> {
    store.get(&format!("{root}{key}")).unwrap()
}

/// Each score record's candidate index and metric values, as JSON.
pub fn metrics_of(bytes: &[u8]) -> Vec<(u64, String)> {
    records_of(bytes)
        .into_iter()
        .map(|r| (r.index, serde_json::to_string(&r.metrics).unwrap()))
        .collect()
}

/// The score records of a JSON-lines object.
pub fn records_of(bytes: &[u8]) -> Vec<ScoreRecord> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One pod's process running in the background, its stderr read line by line.
pub struct Running {
    child: Child,
    stderr: BufReader<ChildStderr>,
    log: tempfile::NamedTempFile,
}

impl Running {
    /// `nas-runner <stage>` as [`stage`] runs it (JSON logs, a termination-message file).
    pub fn start(stage: &str, spec: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = runner(stage, spec);
        cmd.args(args)
            .args(["--log-format", "json", "--termination-log"])
            .arg(log.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        Running { child, stderr, log }
    }

    /// Reads stderr until a line contains `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stderr.read_line(&mut line).unwrap();
            assert!(n > 0, "the process ended before printing {needle:?}");
            if line.contains(needle) {
                return;
            }
        }
    }

    /// Kills the process without warning (SIGKILL: a lost node, the OOM killer).
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, as the kubelet sends it to a pod it deletes; the pod must end with exit 143
    /// and an `interrupted` summary, on stdout and in the termination message alike.
    pub fn stop(self) -> (Output, TerminationSummary) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Drain stderr so that a chatty process never blocks on a full pipe.
        let mut stderr = self.stderr;
        let drain = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let out = self.child.wait_with_output().unwrap();
        let _ = drain.join();
        let summary = summary_of("stopped pod", &out, self.log.path());
        assert_eq!(out.status.code(), Some(143), "{summary:?}");
        assert_eq!(
            (summary.outcome, summary.exit_code),
            (Outcome::Interrupted, 143),
            "{summary:?}"
        );
        assert!(summary.error.is_none(), "{summary:?}");
        (out, summary)
    }
}

/// Shard 1 of 2's metric values in a search of `candidates` under the fresh UID `uid` that was
/// never stopped: what an interrupted and resumed shard must match.
pub fn clean_shard_metrics(f: &Fixture, uid: &str, candidates: u32) -> Vec<(u64, String)> {
    let (spec, _) = f.spec(uid, candidates, &|y| y);
    ok("stage-data", &spec, &[]);
    ok("score", &spec, &["--shard", "1/2"]);
    let root = format!("runs/team-a/tiny/{uid}/");
    metrics_of(&get(&f.bucket(), &root, "score/shard-00001.jsonl"))
}

//! A whole "cluster" on this machine for end-to-end scenarios: the API server double, the Job
//! controller double running the real `nas-runner` binary, the real `nas-operator` binary as a
//! process (so it can be killed and restarted), and an in-process S3 server for the artifacts.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use nas_api::crd::{NASSearch, Phase};
use nas_testkit::{S3TestServer, TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY};

use crate::apiserver::{ApiServer, ApiServerConfig};
use crate::jobcontroller::{JobController, JobControllerConfig};

/// The artifact bucket every scenario's searches write to.
pub const BUCKET: &str = "nas-e2e";

/// Where `cargo test` put the workspace's binaries (`target/debug`), found from this test
/// executable's path (`target/debug/deps/<test>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    dir.to_path_buf()
}

/// A workspace binary, checked to exist.
pub fn binary(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        p.display()
    );
    p
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub api: ApiServer,
    pub client: kube::Client,
    pub jobs: JobController,
    s3: Option<S3TestServer>,
    operator: Option<Child>,
    kubeconfig: PathBuf,
}

/// How runner pods are launched.
pub struct RunnerSetup {
    /// The executable that stands for `nas-runner` (the real one, or a wrapper script).
    pub executable: PathBuf,
    /// Extra variables for every runner process.
    pub env: Vec<(String, String)>,
}

impl Default for RunnerSetup {
    fn default() -> Self {
        RunnerSetup {
            executable: binary("nas-runner"),
            env: Vec::new(),
        }
    }
}

impl Cluster {
    /// Starts the API server, the S3 server, the Job controller and the operator.
    pub async fn start(runner: RunnerSetup) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let api = ApiServer::start(ApiServerConfig::default())
            .await
            .expect("API server double");
        let client = api.client().expect("client");
        let s3_root = dir.path().join("s3");
        let s3 = tokio::task::block_in_place(|| S3TestServer::start(&s3_root)).expect("S3 server");
        s3.create_bucket(BUCKET).expect("bucket");
        let mut cfg = JobControllerConfig::new(dir.path().join("pods"))
            .binary("nas-runner", &runner.executable);
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY),
            ("AWS_REGION", TEST_REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("NAS_S3_MAX_ATTEMPTS", "3"),
            ("NAS_LOG_FORMAT", "json"),
        ] {
            cfg = cfg.env(k, v);
        }
        for (k, v) in &runner.env {
            cfg = cfg.env(k, v);
        }
        cfg.termination_path_env = Some("NAS_TERMINATION_LOG".into());
        let jobs = JobController::start(client.clone(), cfg);
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster: {{server: \"{}\"}}\nusers:\n- name: e2e\n  user: {{}}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: e2e, namespace: default}}\ncurrent-context: e2e\n",
                api.url()
            ),
        )
        .expect("kubeconfig");
        let mut cluster = Cluster {
            dir,
            api,
            client,
            jobs,
            s3: Some(s3),
            operator: None,
            kubeconfig,
        };
        cluster.start_operator();
        cluster
    }

    pub fn s3_endpoint(&self) -> String {
        self.s3
            .as_ref()
            .map(S3TestServer::endpoint)
            .unwrap_or_default()
    }

    /// The file behind `key` of the artifact bucket (s3s-fs keeps objects as files).
    pub fn object(&self, key: &str) -> PathBuf {
        self.dir.path().join("s3").join(BUCKET).join(key)
    }

    /// Starts `nas-operator run` against the API server double.
    pub fn start_operator(&mut self) {
        assert!(self.operator.is_none(), "operator already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("operator.log"))
            .expect("operator log");
        let child = Command::new(binary("nas-operator"))
            .arg("run")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NAS_METRICS_ADDR", "127.0.0.1:0")
            .env("NAS_BACKOFF_BASE_SECONDS", "1")
            .env("NAS_BACKOFF_MAX_SECONDS", "2")
            .env_remove("NAS_WATCH_NAMESPACES")
            .env_remove("NAS_LEADER_ELECT")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nas-operator starts");
        self.operator = Some(child);
    }

    /// Kills the operator (SIGKILL: no graceful shutdown, as a crashed pod).
    pub fn kill_operator(&mut self) {
        if let Some(mut c) = self.operator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The operator's log so far, for failure messages.
    pub fn operator_log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("operator.log")).unwrap_or_default();
        let tail: Vec<char> = text.chars().rev().take(4000).collect();
        tail.into_iter().rev().collect()
    }

    /// Server-side applies a NASSearch YAML.
    pub async fn apply(&self, yaml: &str) -> NASSearch {
        let search: NASSearch = serde_yaml::from_str(yaml).expect("test YAML is a NASSearch");
        let ns = search
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = search.metadata.name.clone().expect("name");
        let api: Api<NASSearch> = Api::namespaced(self.client.clone(), &ns);
        api.patch(
            &name,
            &PatchParams::apply("e2e-test").force(),
            &Patch::Apply(&search),
        )
        .await
        .expect("apply")
    }

    pub async fn get(&self, ns: &str, name: &str) -> Option<NASSearch> {
        Api::<NASSearch>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .expect("get NASSearch")
    }

    pub async fn delete(&self, ns: &str, name: &str) {
        Api::<NASSearch>::namespaced(self.client.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete NASSearch");
    }

    /// Polls until `done` holds for the search, or panics after `timeout` with its status and
    /// the operator's log.
    pub async fn wait_for(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&NASSearch) -> bool,
    ) -> NASSearch {
        let start = Instant::now();
        loop {
            if let Some(s) = self.get(ns, name).await {
                if done(&s) {
                    return s;
                }
                if start.elapsed() > timeout {
                    panic!(
                        "{ns}/{name}: not {what} after {timeout:?}; status {}\n--- operator log ---\n{}",
                        serde_json::to_string_pretty(&s.status).unwrap_or_default(),
                        self.operator_log()
                    );
                }
            } else if start.elapsed() > timeout {
                panic!("{ns}/{name}: gone while waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the search to end (Succeeded or Failed) and returns it.
    pub async fn wait_ended(&self, ns: &str, name: &str, timeout: Duration) -> NASSearch {
        self.wait_for(ns, name, timeout, "ended", |s| {
            s.status
                .as_ref()
                .is_some_and(|st| matches!(st.phase, Phase::Succeeded | Phase::Failed))
        })
        .await
    }

    /// The runner pods launched so far for `stage` of searches in `ns` (job names carry the
    /// stage).
    pub fn runner_launches(&self, ns: &str, stage: &str) -> usize {
        self.jobs
            .runs()
            .iter()
            .filter(|r| r.namespace == ns && r.job.contains(&format!("-{stage}-")))
            .count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_operator();
        if let Some(s3) = self.s3.take() {
            // Its runtime must not be dropped on an async worker thread.
            std::thread::spawn(move || drop(s3));
        }
    }
}

/// A small CIFAR-10 cut (`per_class` train and `per_class / 3` test images of each class) of
/// `../shared/data/cifar10`, in the same layout (`train.tar.gz`, `test.tar.gz` of class folders),
/// made once per test process.
pub fn cifar10_subset(per_class: usize) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cifar10");
        assert!(
            shared.is_dir(),
            "{} is missing: the end-to-end scenarios read CIFAR-10 from the shared data",
            shared.display()
        );
        let out = std::env::temp_dir().join(format!("nas-e2e-cifar10-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("subset folder");
        for (split, n) in [("train", per_class), ("test", per_class.div_ceil(3))] {
            cut_tar_gz(
                &shared.join(format!("{split}.tar.gz")),
                &out.join(format!("{split}.tar.gz")),
                n,
            );
        }
        out
    })
    .clone()
}

/// Copies the first `per_class` files of each class folder of a gzipped tar.
fn cut_tar_gz(from: &Path, to: &Path, per_class: usize) {
    use std::collections::BTreeMap;
    use std::io::Read;
    let file = std::fs::File::open(from).expect("shared CIFAR-10 archive");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let out = flate2::write::GzEncoder::new(
        std::fs::File::create(to).expect("subset archive"),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(out);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let clean = path.trim_start_matches("./").to_string();
        let Some((class, _)) = clean.split_once('/') else {
            continue;
        };
        let n = counts.entry(class.to_string()).or_default();
        if *n >= per_class {
            continue;
        }
        *n += 1;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry bytes");
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut h, &clean, &bytes[..])
            .expect("append");
    }
    builder
        .into_inner()
        .expect("tar finish")
        .finish()
        .expect("gzip finish");
}

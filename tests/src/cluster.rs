//! A whole cluster on this machine for end-to-end scenarios. One [`Environment`] per test
//! binary, started by the first scenario that needs it: the real control plane
//! ([`crate::controlplane`]), the chart installed with `helm install` (its CRD, RBAC and
//! ServiceAccount), the process kubelet running pods of the real `nas-runner`, and an S3 server
//! for the artifacts. Each scenario then gets a [`Cluster`]: its own namespaces (with the S3
//! credentials in a Secret), the real `nas-operator` binary as a process watching them (so a
//! scenario can kill and restart it), authenticated with a token of the chart's ServiceAccount,
//! so the chart's RBAC authorizes every call it makes.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use nas_api::crd::{NASSearch, Phase};
use nas_testkit::{S3TestServer, TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY};

use crate::controlplane::procs::Proc;
use crate::controlplane::{ControlPlane, NODE_NAME};
use crate::kubelet::{Image, Images, Kubelet, KubeletConfig, RunRecord};
use crate::tools;

/// The artifact bucket every scenario's searches write to.
pub const BUCKET: &str = "nas-e2e";
/// Where the chart is installed, and its release name (so its ServiceAccount is this too).
pub const OPERATOR_NAMESPACE: &str = "nas-system";
pub const RELEASE: &str = "nas-operator";
/// The runner image every scenario can use: the real `nas-runner`.
pub const RUNNER_IMAGE: &str = "nas-runner:e2e";
/// The Secret holding the S3 key pair in each scenario namespace.
pub const S3_SECRET: &str = "nas-s3";

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

/// What the scenarios of one test binary share. Never dropped: its processes die with the
/// test process (see [`crate::controlplane::procs`]).
pub struct Environment {
    pub plane: ControlPlane,
    pub images: Images,
    /// A kubeconfig with a token of the chart's ServiceAccount (what the operator uses).
    pub operator_kubeconfig: PathBuf,
    s3: S3TestServer,
    kubelet: Kubelet,
    _runtime: tokio::runtime::Runtime,
}

impl Environment {
    /// The shared environment, started on first use; a failed start fails every scenario
    /// with the same message.
    pub fn get() -> &'static Environment {
        static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
        let env = ENV.get_or_init(|| {
            // Its own thread and runtime: the kubelet outlives every scenario's runtime.
            std::thread::spawn(Environment::start)
                .join()
                .unwrap_or_else(|_| Err("starting the environment panicked".into()))
        });
        match env {
            Ok(e) => e,
            Err(e) => panic!("the end-to-end environment did not start: {e}"),
        }
    }

    fn start() -> Result<Environment, String> {
        let began = Instant::now();
        let dir = scratch_dir();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("e2e-kubelet")
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let plane = runtime
            .block_on(ControlPlane::start(&dir.join("kube")))
            .map_err(|e| e.to_string())?;
        let admin = plane.admin_kubeconfig.clone();
        let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/nas-operator");
        let chart = chart.to_string_lossy().into_owned();
        tools::run(
            "helm",
            &admin,
            &[
                "install",
                RELEASE,
                &chart,
                "--namespace",
                OPERATOR_NAMESPACE,
                "--create-namespace",
            ],
        )
        .ok_or_err("helm install")?;
        tools::run(
            "kubectl",
            &admin,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/nassearches.nas.example.dev",
            ],
        )
        .ok_or_err("kubectl wait for the CRD")?;
        // The CRD's OpenAPI schema is published a moment after it is Established; kubectl
        // explain (and client-side validation) need it.
        let start = Instant::now();
        while !tools::run("kubectl", &admin, &["explain", "nassearch.spec"]).ok {
            if start.elapsed() > Duration::from_secs(60) {
                return Err("the NASSearch OpenAPI schema was not published within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let token = tools::run(
            "kubectl",
            &admin,
            &[
                "create",
                "token",
                RELEASE,
                "-n",
                OPERATOR_NAMESPACE,
                "--duration=24h",
            ],
        )
        .ok_or_err("kubectl create token")?;
        let operator_kubeconfig = dir.join("operator.kubeconfig");
        plane
            .write_kubeconfig(&operator_kubeconfig, token.trim())
            .map_err(|e| e.to_string())?;

        let s3 = S3TestServer::start(&dir.join("s3")).map_err(|e| format!("S3 server: {e}"))?;
        s3.create_bucket(BUCKET)
            .map_err(|e| format!("bucket: {e}"))?;
        let images = Images::default();
        images.add(RUNNER_IMAGE, runner_image(binary("nas-runner")));
        let port = plane
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(443);
        let kubelet = runtime.block_on(async {
            let client = plane.admin_client().await.map_err(|e| e.to_string())?;
            let config = KubeletConfig {
                node: NODE_NAME.into(),
                workdir: dir.join("pods"),
                images: images.clone(),
                inherit_env: vec!["PATH".into()],
                termination_path_env: Some("NAS_TERMINATION_LOG".into()),
                max_grace: KUBELET_MAX_GRACE,
                service: ("127.0.0.1".into(), port),
            };
            Ok::<_, String>(Kubelet::start(client, config))
        })?;
        eprintln!(
            "e2e environment (control plane, chart, kubelet, S3) ready in {:.1} s under {}",
            began.elapsed().as_secs_f64(),
            dir.display()
        );
        Ok(Environment {
            plane,
            images,
            operator_kubeconfig,
            s3,
            kubelet,
            _runtime: runtime,
        })
    }

    /// Every container the kubelet ran so far.
    pub fn runs(&self) -> Vec<RunRecord> {
        self.kubelet.runs()
    }
}

/// The runner image: `nas-runner` (real or a stand-in) with the variables the image sets.
/// The kubelet double's SIGTERM-to-SIGKILL grace: every pod's 30 s cut short for test speed.
const KUBELET_MAX_GRACE: Duration = Duration::from_secs(5);
/// The runner's stop wait inside that shortened grace, as a user who shortens a pod's
/// `terminationGracePeriodSeconds` sets `NAS_STOP_WAIT_SECONDS`: told the contract's 20 s, a
/// runner whose candidate outlasts 5 s on a loaded machine is SIGKILLed mid-stop (exit 137)
/// instead of ending itself with its summary (143).
const RUNNER_STOP_WAIT_SECONDS: u64 = 3;

pub fn runner_image(executable: PathBuf) -> Image {
    Image::with_binary("nas-runner", executable)
        .env(
            "NAS_STOP_WAIT_SECONDS",
            &RUNNER_STOP_WAIT_SECONDS.to_string(),
        )
        .env("AWS_REGION", TEST_REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NAS_S3_MAX_ATTEMPTS", "3")
        .env("NAS_LOG_FORMAT", "json")
}

trait OkOrErr {
    fn ok_or_err(self, what: &str) -> Result<String, String>;
}

impl OkOrErr for tools::Output {
    fn ok_or_err(self, what: &str) -> Result<String, String> {
        if self.ok {
            Ok(self.stdout)
        } else {
            Err(format!("{what} failed:\n{}\n{}", self.stdout, self.stderr))
        }
    }
}

/// A folder for this test process under the system temp dir; those of test processes that are
/// gone are removed first (a killed test binary cannot clean up after itself).
fn scratch_dir() -> PathBuf {
    let base = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("nas-e2e-env-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = base.join(format!("nas-e2e-env-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// How runner pods run.
pub struct RunnerSetup {
    /// The executable that stands for `nas-runner` (the real one, or a wrapper script).
    pub executable: PathBuf,
}

impl Default for RunnerSetup {
    fn default() -> Self {
        RunnerSetup {
            executable: binary("nas-runner"),
        }
    }
}

/// One scenario's part of the environment: its namespaces and its operator.
pub struct Cluster {
    pub env: &'static Environment,
    /// An admin client on the scenario's runtime.
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    pub namespaces: Vec<String>,
    /// The image the scenario's searches run.
    pub runner_image: String,
    operator: Option<Proc>,
}

impl Cluster {
    /// Creates `namespaces` (each with the S3 Secret), makes the runner image, and starts an
    /// operator watching those namespaces.
    pub async fn start(namespaces: &[&str], runner: RunnerSetup) -> Cluster {
        let env = tokio::task::block_in_place(Environment::get);
        let client = env.plane.admin_client().await.expect("admin client");
        let runner_image = if runner.executable == binary("nas-runner") {
            RUNNER_IMAGE.to_string()
        } else {
            let image = format!("nas-runner:{}", namespaces.join("-"));
            env.images.add(&image, runner_image(runner.executable));
            image
        };
        for ns in namespaces {
            create_namespace(&client, ns).await;
        }
        let mut cluster = Cluster {
            env,
            client,
            dir: tempfile::tempdir().expect("temp dir"),
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            runner_image,
            operator: None,
        };
        cluster.start_operator();
        cluster
    }

    pub fn s3_endpoint(&self) -> String {
        self.env.s3.endpoint()
    }

    /// The file behind `key` of the artifact bucket (s3s-fs keeps objects as files).
    pub fn object(&self, key: &str) -> PathBuf {
        self.env.s3.root().join(BUCKET).join(key)
    }

    /// The admin kubeconfig, for kubectl in scenarios.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.env.plane.admin_kubeconfig
    }

    /// kubectl with the admin credential.
    pub fn kubectl(&self, args: &[&str]) -> tools::Output {
        tools::run("kubectl", self.admin_kubeconfig(), args)
    }

    /// Starts `nas-operator run` with the chart's ServiceAccount token, watching the scenario's
    /// namespaces.
    pub fn start_operator(&mut self) {
        assert!(self.operator.is_none(), "operator already running");
        let env = [
            (
                "KUBECONFIG",
                self.env.operator_kubeconfig.display().to_string(),
            ),
            ("NAS_WATCH_NAMESPACES", self.namespaces.join(",")),
            ("NAS_METRICS_ADDR", "127.0.0.1:0".to_string()),
            ("NAS_BACKOFF_BASE_SECONDS", "1".to_string()),
            ("NAS_BACKOFF_MAX_SECONDS", "2".to_string()),
            ("NAS_LEADER_ELECT", "false".to_string()),
            ("RUST_LOG", "info".to_string()),
            ("NO_COLOR", "1".to_string()),
            ("PATH", std::env::var("PATH").unwrap_or_default()),
        ]
        .map(|(k, v)| (k.to_string(), v));
        let proc = Proc::spawn(
            "nas-operator",
            &binary("nas-operator"),
            &["run".to_string()],
            &env,
            &self.dir.path().join("operator.log"),
        )
        .expect("nas-operator starts");
        self.operator = Some(proc);
    }

    /// Kills the operator (SIGKILL: no graceful shutdown, as a crashed pod).
    pub fn kill_operator(&mut self) {
        if let Some(mut p) = self.operator.take() {
            p.kill();
        }
    }

    /// The operator's log so far, for failure messages.
    pub fn operator_log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("operator.log")).unwrap_or_default();
        let tail: Vec<char> = text.chars().rev().take(4000).collect();
        tail.into_iter().rev().collect()
    }

    /// The operator's Prometheus metrics (its `/metrics`, at the address its log names).
    pub fn operator_metrics(&self) -> Result<String, String> {
        use std::io::{Read, Write};
        let log = std::fs::read_to_string(self.dir.path().join("operator.log"))
            .map_err(|e| format!("operator log: {e}"))?;
        let addr = log
            .lines()
            .filter(|l| l.contains("serving /metrics"))
            .filter_map(|l| l.split("addr=").nth(1))
            .filter_map(|t| t.split(|c: char| c.is_whitespace() || c == '"').next())
            .next_back()
            .ok_or("the operator's log names no metrics address")?
            .to_string();
        let mut conn =
            std::net::TcpStream::connect(&addr).map_err(|e| format!("metrics at {addr}: {e}"))?;
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .ok_or_else(|| format!("no HTTP answer from {addr}"))
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
        .unwrap_or_else(|e| panic!("applying {ns}/{name}: {e}"))
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
                        "{ns}/{name}: not {what} after {timeout:?}; status {}\n{}",
                        serde_json::to_string_pretty(&s.status).unwrap_or_default(),
                        self.diagnostics(ns)
                    );
                }
            } else if start.elapsed() > timeout {
                panic!("{ns}/{name}: gone while waiting for {what}");
            }
            if let Err(e) = self.env.plane.check_alive() {
                panic!("the control plane failed: {e}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
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

    /// Jobs, pods and events of `ns` and the operator's log, for failure messages.
    pub fn diagnostics(&self, ns: &str) -> String {
        let get = self.kubectl(&["get", "jobs,pods", "-n", ns, "-o", "wide"]);
        let events = self.kubectl(&["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]);
        format!(
            "--- jobs and pods ---\n{}{}\n--- events ---\n{}\n--- operator log ---\n{}",
            get.stdout,
            get.stderr,
            events
                .stdout
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n"),
            self.operator_log()
        )
    }

    /// The containers the kubelet ran for searches in `ns`.
    pub fn runs(&self, ns: &str) -> Vec<RunRecord> {
        self.env
            .runs()
            .into_iter()
            .filter(|r| r.namespace == ns)
            .collect()
    }

    /// The runner pods launched so far for `stage` of searches in `ns` (job names carry the
    /// stage).
    pub fn runner_launches(&self, ns: &str, stage: &str) -> usize {
        self.runs(ns)
            .iter()
            .filter(|r| {
                r.job
                    .as_deref()
                    .is_some_and(|j| j.contains(&format!("-{stage}-")))
            })
            .count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_operator();
        // The namespace controller removes what the scenario left (its pods stop too).
        for ns in &self.namespaces {
            let _ = self.kubectl(&["delete", "namespace", ns, "--wait=false"]);
        }
    }
}

/// A namespace with the S3 credentials Secret the searches name.
async fn create_namespace(client: &kube::Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {ns}: {e}"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": S3_SECRET},
        "stringData": {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("creating the S3 Secret in {ns}: {e}"));
}

/// A small data set in the CIFAR-10 JPEG layout (`train.tar.gz`, `test.tar.gz` of class folders
/// of 32x32 JPEGs): `per_class` train and `per_class / 3` test images of each of ten classes,
/// generated (the scenarios test the pipeline, not accuracy), made once per test process.
pub fn cifar10_like(per_class: usize) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("nas-e2e-cifar10-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("data folder");
        for (split, n, seed) in [
            ("train", per_class, 0),
            ("test", per_class.div_ceil(3), 1000),
        ] {
            write_jpeg_tar_gz(&out.join(format!("{split}.tar.gz")), n, seed);
        }
        out
    })
    .clone()
}

/// `per_class` generated JPEGs of each of ten classes, as `class/NNNN.jpg` in a gzipped tar.
fn write_jpeg_tar_gz(to: &Path, per_class: usize, seed: u32) {
    use nas_testkit::jpeg::{encode, pattern, Layout};
    let out = flate2::write::GzEncoder::new(
        std::fs::File::create(to).expect("data archive"),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(out);
    for class in 0..10u32 {
        for i in 0..per_class as u32 {
            let bytes = encode(
                &pattern(32, 32, Layout::Rgb, class, seed + i),
                32,
                32,
                Layout::Rgb,
                90,
            );
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut h, format!("class{class}/{i:04}.jpg"), &bytes[..])
                .expect("append");
        }
    }
    builder.into_inner().expect("tar").finish().expect("gzip");
}

//! A real Kubernetes control plane on 127.0.0.1 for the end-to-end tests: etcd,
//! kube-apiserver (RBAC, its own self-signed serving certificate, service-account token signing,
//! Pod Security admission), kube-controller-manager (the Job, garbage-collector,
//! TTL-after-finished, namespace and service-account controllers) and kube-scheduler, built from
//! Go modules by `scripts/build-kube.sh`, plus one Node object that [`crate::kubelet`] serves.
//!
//! Every process runs from a temporary folder on free ports and dies with the test process
//! ([`procs`]). The test harness authenticates with a static admin token (group
//! `system:masters`) that only this module and the harness know; what the operator does is
//! authorized by the chart's RBAC through a ServiceAccount token ([`crate::cluster`]).
mod binaries;
pub mod procs;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

pub use binaries::{bin_dir, kube_version};
use procs::{free_port, Proc};

/// The Node the process kubelet serves.
pub const NODE_NAME: &str = "e2e-node";
/// What the Node offers the scheduler.
pub const NODE_CPU: &str = "16";
pub const NODE_MEMORY: &str = "64Gi";
pub const NODE_PODS: &str = "110";
pub const NODE_GPUS: &str = "2";

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Binaries(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{name} exited ({status}) while starting; its log ends:\n{log}")]
    Exited {
        name: String,
        status: String,
        log: String,
    },
    #[error("{what} not ready after {secs} s; {log}")]
    Timeout {
        what: String,
        secs: u64,
        log: String,
    },
    #[error("talking to the API server: {0}")]
    Kube(#[from] kube::Error),
    #[error("building a client: {0}")]
    Client(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

/// A running control plane; its processes are killed when it is dropped.
pub struct ControlPlane {
    /// Temporary folder of every file it uses (logs, etcd data, certificates, kubeconfigs).
    pub dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The API server's self-signed serving certificate (with its CA).
    pub ca_file: PathBuf,
    /// A kubeconfig with the admin token, for kubectl and helm in tests.
    pub admin_kubeconfig: PathBuf,
    procs: Mutex<Vec<Proc>>,
}

impl ControlPlane {
    /// Starts etcd, the API server, the controller manager and the scheduler in `dir`, and
    /// registers the Node.
    pub async fn start(dir: &Path) -> Result<ControlPlane, StartError> {
        let bin = bin_dir().map_err(StartError::Binaries)?;
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let mut procs = Vec::new();

        let etcd_port = free_port();
        let peer_port = free_port();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let args: Vec<String> = [
            "--name=e2e".to_string(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=e2e={peer_url}"),
            // Test data: losing it on a crash is fine, and fsync dominates on slow disks.
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ]
        .into();
        procs.push(spawn(&bin, "etcd", &args, dir)?);

        let sa_key = dir.join("sa.key");
        let sa_pub = dir.join("sa.pub");
        openssl(&["genrsa", "-out", path_str(&sa_key), "2048"])?;
        openssl(&[
            "rsa",
            "-in",
            path_str(&sa_key),
            "-pubout",
            "-out",
            path_str(&sa_pub),
        ])?;
        let admin_token = uuid::Uuid::new_v4().simple().to_string();
        let tokens = dir.join("tokens.csv");
        std::fs::write(
            &tokens,
            format!("{admin_token},e2e-admin,e2e-admin,\"system:masters\"\n"),
        )
        .map_err(io("writing the token file"))?;

        let port = free_port();
        let cert_dir = dir.join("apiserver-certs");
        let args: Vec<String> = [
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", cert_dir.display()),
            "--authorization-mode=RBAC".into(),
            format!("--token-auth-file={}", tokens.display()),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ]
        .into();
        procs.push(spawn(&bin, "kube-apiserver", &args, dir)?);
        let url = format!("https://127.0.0.1:{port}");
        // The API server writes its self-signed certificate (serving cert, then its CA) here.
        let ca_file = cert_dir.join("apiserver.crt");
        wait_until(
            &mut procs,
            "the API server's serving certificate",
            60,
            || ca_file.is_file(),
        )
        .await?;
        let admin_kubeconfig = dir.join("admin.kubeconfig");
        write_kubeconfig(&admin_kubeconfig, &url, &ca_file, &admin_token)?;

        let plane = ControlPlane {
            dir: dir.to_path_buf(),
            url,
            ca_file,
            admin_kubeconfig,
            procs: Mutex::new(procs),
        };
        plane.wait_ready().await?;

        let kubeconfig = plane.admin_kubeconfig.display().to_string();
        let args: Vec<String> = [
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            // Only what the tests rely on: Jobs, owner references, TTL, namespace deletion,
            // the default ServiceAccount and the root CA ConfigMap every pod mounts.
            "--controllers=job-controller,garbage-collector-controller,ttl-after-finished-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller".into(),
            format!("--root-ca-file={}", plane.ca_file.display()),
            format!("--service-account-private-key-file={}", sa_key.display()),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--v=1".into(),
        ]
        .into();
        let kcm = spawn(&bin, "kube-controller-manager", &args, dir)?;
        let args: Vec<String> = [
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--v=1".into(),
        ]
        .into();
        let scheduler = spawn(&bin, "kube-scheduler", &args, dir)?;
        plane.lock().extend([kcm, scheduler]);

        plane.register_node().await?;
        Ok(plane)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Proc>> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client with the admin token, on the calling runtime.
    pub async fn admin_client(&self) -> Result<kube::Client, StartError> {
        client_from(&self.admin_kubeconfig)
            .await
            .map_err(|e| StartError::Client(format!("{e:#}")))
    }

    /// Writes a kubeconfig for `token` (a ServiceAccount's) at `path`.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) -> Result<(), StartError> {
        write_kubeconfig(path, &self.url, &self.ca_file, token)
    }

    /// An error naming the first process that died, with its log tail.
    pub fn check_alive(&self) -> Result<(), String> {
        for p in self.lock().iter_mut() {
            if let Some(status) = p.exited() {
                return Err(format!(
                    "{} exited ({status}); its log ends:\n{}",
                    p.name,
                    p.log_tail(3000)
                ));
            }
        }
        Ok(())
    }

    /// [`ControlPlane::check_alive`] as a start error.
    fn alive(&self) -> Result<(), StartError> {
        self.check_alive().map_err(|log| StartError::Exited {
            name: "a control-plane process".into(),
            status: "early".into(),
            log,
        })
    }

    async fn wait_ready(&self) -> Result<(), StartError> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            self.alive()?;
            if let Ok(client) = self.admin_client().await {
                let req = http::Request::get("/readyz")
                    .body(Vec::new())
                    .expect("request");
                match client.request_text(req).await {
                    Ok(text) if text.trim() == "ok" => return Ok(()),
                    Ok(text) => last = text,
                    Err(e) => last = e.to_string(),
                }
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(StartError::Timeout {
                    what: "the API server's /readyz".into(),
                    secs: 120,
                    log: format!("last answer: {last}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Creates the Node with its capacity, a Ready condition and no taints (nothing else
    /// updates it: no node-lifecycle controller runs, so it never goes NotReady).
    async fn register_node(&self) -> Result<(), StartError> {
        let client = self.admin_client().await?;
        let nodes: Api<Node> = Api::all(client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE_NAME, "labels": {
                "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64"}},
        }))
        .expect("node object");
        nodes.create(&PostParams::default(), &node).await?;
        let capacity = json!({"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS,
            "nvidia.com/gpu": NODE_GPUS, "ephemeral-storage": "100Gi"});
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let status = json!({"status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "process kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": NODE_NAME}],
            "nodeInfo": {"kubeletVersion": kube_version(), "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion":
                "process://0", "osImage": "", "kernelVersion": "", "machineID": "",
                "systemUUID": "", "bootID": ""}}});
        nodes
            .patch_status(NODE_NAME, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        // The API server taints a new Node not-ready (TaintNodesByCondition); the node
        // lifecycle controller, which would lift it once the Node is Ready, does not run.
        nodes
            .patch(
                NODE_NAME,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"taints": null}})),
            )
            .await?;
        // The scheduler waits for the default namespace's ServiceAccount before pods can be
        // created anywhere; wait for the controllers to be up the same way.
        let start = Instant::now();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let _ = namespaces.get("default").await?;
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client, "default");
        loop {
            if sas.get_opt("default").await?.is_some() {
                return Ok(());
            }
            self.alive()?;
            if start.elapsed() > Duration::from_secs(120) {
                return Err(StartError::Timeout {
                    what: "the default ServiceAccount (serviceaccount controller)".into(),
                    secs: 120,
                    log: self.log_tail("kube-controller-manager"),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The log tail of one of its processes.
    pub fn log_tail(&self, name: &str) -> String {
        self.lock()
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.log_tail(3000))
            .unwrap_or_default()
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn spawn(bin: &Path, name: &str, args: &[String], dir: &Path) -> Result<Proc, StartError> {
    Proc::spawn(
        name,
        &bin.join(name),
        args,
        &[],
        &dir.join(format!("{name}.log")),
    )
    .map_err(io(format!("starting {name}")))
}

fn openssl(args: &[&str]) -> Result<(), StartError> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .map_err(io("running openssl (Debian: apt-get install openssl)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StartError::Command {
            what: format!("openssl {}", args.join(" ")),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

async fn wait_until(
    procs: &mut [Proc],
    what: &str,
    secs: u64,
    done: impl Fn() -> bool,
) -> Result<(), StartError> {
    let start = Instant::now();
    while !done() {
        for p in procs.iter_mut() {
            if let Some(status) = p.exited() {
                return Err(StartError::Exited {
                    name: p.name.clone(),
                    status: status.to_string(),
                    log: p.log_tail(3000),
                });
            }
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let log = procs.last().map(|p| p.log_tail(3000)).unwrap_or_default();
            return Err(StartError::Timeout {
                what: what.into(),
                secs,
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn write_kubeconfig(path: &Path, url: &str, ca: &Path, token: &str) -> Result<(), StartError> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\nusers:\n- name: e2e\n  user:\n    token: {token}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: e2e, namespace: default}}\ncurrent-context: e2e\n",
        ca = ca.display()
    );
    std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))?;
    // Holds a credential: owner only.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("restricting {}", path.display())))
}

/// A client for a kubeconfig file, on the calling runtime.
pub async fn client_from(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("loading {}", kubeconfig.display()))?;
    Ok(kube::Client::try_from(config)?)
}

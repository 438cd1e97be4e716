//! A process kubelet: there is no container runtime on the test machines, so this stands in for
//! the kubelet of one Node. It watches the Pods the real scheduler bound to its Node and runs
//! each pod's container as a local process ([`pod`]), doing what a kubelet does where the
//! operator can see it:
//!
//! * images are looked up in [`Images`], which maps an image name to the local executables it
//!   "contains" and its environment; an unknown image leaves the pod Waiting with
//!   `ErrImagePull`, then `ImagePullBackOff`;
//! * volumes (ConfigMap, Secret, emptyDir, projected with a bound ServiceAccount token) are
//!   written to per-pod folders ([`volumes`]); a missing object keeps the pod in
//!   `ContainerCreating`;
//! * the environment is resolved from the pod ([`env`]); a missing ConfigMap, Secret or key
//!   leaves it Waiting with `CreateContainerConfigError`;
//! * pod status is patched as the status manager does ([`status`]): Pending, Running with start
//!   times, then Succeeded or Failed with the exit code, reason and termination message (the
//!   file at `terminationMessagePath`, or the log tail under `FallbackToLogsOnError`);
//! * a deleted pod gets SIGTERM, its grace period, SIGKILL; it is then reported terminal and
//!   removed with grace period 0, as the kubelet finishes a graceful deletion.
//!
//! Departures from a real kubelet: the process runs on this machine with the test's user, not
//! in a container (no isolation, no resource limits, no security context applied; mount paths
//! and the termination-message path are rewritten to per-pod files in argv and env, and
//! [`KubeletConfig::termination_path_env`] names a variable that receives the latter); only the
//! first container runs (no init or sidecar containers, no probes, no restarts: every pod here
//! has `restartPolicy: Never`); back-offs are seconds, not the kubelet's 10 s to 5 min; no
//! events are emitted, no node heartbeats or leases are written, and no node authorizer limits
//! what it reads (it uses the admin credential).
pub mod env;
mod pod;
pub mod process;
pub mod status;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::watch;

/// A container image as the process kubelet knows it: the executables on its `PATH` (command
/// name → local file) and its `ENV`.
#[derive(Debug, Clone, Default)]
pub struct Image {
    pub binaries: BTreeMap<String, PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Image {
    /// An image holding one executable under `name`.
    pub fn with_binary(name: &str, path: impl Into<PathBuf>) -> Image {
        Image {
            binaries: BTreeMap::from([(name.to_string(), path.into())]),
            env: Vec::new(),
        }
    }

    /// Adds a variable of the image's environment.
    pub fn env(mut self, key: &str, value: &str) -> Image {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// The images "present on the node", shared with the tests that add them.
#[derive(Debug, Clone, Default)]
pub struct Images(Arc<RwLock<HashMap<String, Image>>>);

impl Images {
    /// Makes `name` (such as `nas-runner:e2e`) pullable.
    pub fn add(&self, name: &str, image: Image) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), image);
    }

    pub fn get(&self, name: &str) -> Option<Image> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }
}

/// How the kubelet runs pods.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The Node whose pods it runs.
    pub node: String,
    /// Per-pod folders (cwd, HOME, volumes, log, termination message) go under here.
    pub workdir: PathBuf,
    pub images: Images,
    /// Variables taken from this process's environment (PATH by default).
    pub inherit_env: Vec<String>,
    /// A variable set to the pod's (rewritten) termination-message path.
    pub termination_path_env: Option<String>,
    /// Longest SIGTERM-to-SIGKILL grace (test speed; a pod's own period applies when shorter).
    pub max_grace: Duration,
    /// `KUBERNETES_SERVICE_HOST` and `_PORT` as the pods see them.
    pub service: (String, u16),
}

/// One container process the kubelet ran (or could not start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// The `batch.kubernetes.io/job-name` label.
    pub job: Option<String>,
    /// The Job completion index annotation.
    pub index: Option<i32>,
    pub pid: Option<u32>,
    /// None while running.
    pub exit_code: Option<i32>,
    pub message: Option<String>,
}

pub(crate) type Records = Arc<Mutex<Vec<RunRecord>>>;

/// A running process kubelet; its pods' processes are stopped when it is dropped.
pub struct Kubelet {
    records: Records,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    /// Starts serving the Node's pods, on the current Tokio runtime.
    pub fn start(client: kube::Client, config: KubeletConfig) -> Kubelet {
        let records = Records::default();
        let ctx = Arc::new(pod::Ctx {
            client,
            config,
            records: records.clone(),
        });
        let task = tokio::spawn(watch_pods(ctx));
        Kubelet { records, task }
    }

    /// Every container process so far, in start order.
    pub fn runs(&self) -> Vec<RunRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

async fn watch_pods(ctx: Arc<pod::Ctx>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.config.node));
    let mut events = watcher(api, cfg).default_backoff().boxed();
    // uid → the latest object, for the pod's worker; None once the worker is done (a uid is
    // never run twice, whatever stale event arrives later).
    let mut workers: HashMap<String, Option<watch::Sender<Option<Pod>>>> = HashMap::new();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                let Some(uid) = p.metadata.uid.clone() else {
                    continue;
                };
                // A pod is run once: a uid whose worker is done, or one that is already
                // terminal, only has its deletion finished.
                let done = match workers.get(&uid) {
                    Some(Some(tx)) if !tx.is_closed() => {
                        tx.send_replace(Some(p));
                        continue;
                    }
                    Some(_) => true,
                    None => is_terminal(&p),
                };
                if done {
                    workers.insert(uid, None);
                    if p.metadata.deletion_timestamp.is_some() && is_terminal(&p) {
                        tokio::spawn(pod::finish_deletion(ctx.clone(), p));
                    }
                } else {
                    let (tx, rx) = watch::channel(Some(p));
                    workers.insert(uid, Some(tx));
                    tokio::spawn(pod::run(ctx.clone(), rx));
                }
            }
            Ok(watcher::Event::Delete(p)) => {
                if let Some(Some(tx)) = p.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                    tx.send_replace(None);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("process kubelet: pod watch: {e}"),
        }
    }
}

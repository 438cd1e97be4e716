//! A double of the Kubernetes Job controller and kubelet for end-to-end tests: it watches Jobs
//! through the API (the [`crate::apiserver`] double, or any server), runs each pod's first
//! container as a local process, creates the Pod objects with their status (phase, exit code,
//! termination message) and writes Job status as the real controller does (see [`tracker`]).
//!
//! Binaries are mapped to local paths by name (`nas-runner` → `target/debug/nas-runner`); an
//! image without a `command` needs an entrypoint in [`JobControllerConfig::entrypoints`]. The
//! container's terminationMessagePath is rewritten to a per-pod file: every occurrence of the
//! path in argv and env values is replaced, and [`JobControllerConfig::termination_path_env`]
//! names an env var that receives it. ConfigMap volumes are written to per-pod folders, their mount
//! paths rewritten the same way ([`volumes`]). Retries start at once (no exponential back-off delay);
//! activeDeadlineSeconds, successPolicy, podReplacementPolicy and ttlSecondsAfterFinished are
//! not acted on; externally deleted Pods are not noticed (delete the Job, or use
//! [`JobController::disrupt`]).
mod env;
pub mod indexes;
pub mod process;
pub mod tracker;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};

use process::{Exit, Launch, Running, StopReason};
use tracker::{PodOutcome, Tracker};

/// How Jobs become processes.
#[derive(Debug, Clone)]
pub struct JobControllerConfig {
    /// argv[0] (exact, or its file name) → local executable.
    pub binaries: HashMap<String, PathBuf>,
    /// image → entrypoint argv, for containers without `command`.
    pub entrypoints: HashMap<String, Vec<String>>,
    /// Variables every process gets (before the container's own).
    pub extra_env: Vec<(String, String)>,
    /// Variables taken from this process's environment (PATH by default).
    pub inherit_env: Vec<String>,
    /// An env var set to the rewritten termination-message path.
    pub termination_path_env: Option<String>,
    /// Per-pod folders (cwd, HOME, log, termination message) go under here.
    pub workdir: PathBuf,
    /// Watch Jobs of this namespace only (all when None).
    pub namespace: Option<String>,
    /// SIGTERM-to-SIGKILL grace when a pod is stopped (capped terminationGracePeriodSeconds).
    pub grace: Duration,
}

impl JobControllerConfig {
    /// Defaults: no mappings, PATH inherited, 2 s grace.
    pub fn new(workdir: impl Into<PathBuf>) -> Self {
        JobControllerConfig {
            binaries: HashMap::new(),
            entrypoints: HashMap::new(),
            extra_env: Vec::new(),
            inherit_env: vec!["PATH".into()],
            termination_path_env: None,
            workdir: workdir.into(),
            namespace: None,
            grace: Duration::from_secs(2),
        }
    }

    /// Maps a command name to a local executable.
    pub fn binary(mut self, name: &str, path: impl Into<PathBuf>) -> Self {
        self.binaries.insert(name.into(), path.into());
        self
    }

    /// Adds a variable every process gets.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.into(), value.into()));
        self
    }
}

/// One process the controller ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub namespace: String,
    pub job: String,
    pub index: Option<i32>,
    pub pod: String,
    pub pid: Option<u32>,
    /// None while running.
    pub exit_code: Option<i32>,
    pub message: Option<String>,
}

#[derive(Default)]
struct Records {
    runs: Vec<RunRecord>,
    max_active: HashMap<(String, String), usize>,
}

enum Command {
    Disrupt {
        namespace: String,
        pod: String,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
}

struct PodExit {
    uid: String,
    namespace: String,
    pod: String,
    container: String,
    index: Option<i32>,
    exit: Exit,
}

struct PodHandle {
    stop: Option<tokio::sync::oneshot::Sender<StopReason>>,
}

struct Entry {
    namespace: String,
    name: String,
    job: Job,
    tracker: Tracker,
    pods: BTreeMap<String, PodHandle>,
    last_status: Value,
}

/// A running Job controller double; its processes are stopped when it is dropped.
pub struct JobController {
    records: Arc<Mutex<Records>>,
    commands: tokio::sync::mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl JobController {
    /// Starts watching Jobs with `client`.
    pub fn start(client: kube::Client, config: JobControllerConfig) -> JobController {
        let records = Arc::new(Mutex::new(Records::default()));
        let (commands, cmd_rx) = tokio::sync::mpsc::channel(16);
        let ctl = Ctl {
            client,
            config,
            jobs: HashMap::new(),
            records: records.clone(),
            exits: tokio::sync::mpsc::unbounded_channel(),
        };
        let task = tokio::spawn(ctl.run(cmd_rx));
        JobController {
            records,
            commands,
            task,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every process run so far, in start order.
    pub fn runs(&self) -> Vec<RunRecord> {
        self.lock().runs.clone()
    }

    /// How many processes ran for a Job (and index, when given).
    pub fn run_count(&self, namespace: &str, job: &str, index: Option<i32>) -> usize {
        self.lock()
            .runs
            .iter()
            .filter(|r| {
                r.namespace == namespace && r.job == job && (index.is_none() || r.index == index)
            })
            .count()
    }

    /// The most processes of a Job that ran at once.
    pub fn max_active(&self, namespace: &str, job: &str) -> usize {
        self.lock()
            .max_active
            .get(&(namespace.to_string(), job.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Disrupts a running pod as an eviction would: the pod gets the DisruptionTarget
    /// condition and its process is stopped. False if no such pod runs.
    pub async fn disrupt(&self, namespace: &str, pod: &str) -> bool {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let cmd = Command::Disrupt {
            namespace: namespace.into(),
            pod: pod.into(),
            reply,
        };
        if self.commands.send(cmd).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

impl Drop for JobController {
    fn drop(&mut self) {
        // Dropping the task drops every pod's stop sender, which stops its process.
        self.task.abort();
    }
}

struct Ctl {
    client: kube::Client,
    config: JobControllerConfig,
    jobs: HashMap<String, Entry>,
    records: Arc<Mutex<Records>>,
    exits: (
        tokio::sync::mpsc::UnboundedSender<PodExit>,
        tokio::sync::mpsc::UnboundedReceiver<PodExit>,
    ),
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..5].to_string()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Ctl {
    async fn run(mut self, mut commands: tokio::sync::mpsc::Receiver<Command>) {
        let api: Api<Job> = match &self.config.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job))) => self.on_job(job).await,
                    Some(Ok(watcher::Event::Delete(job))) => self.on_deleted(&job),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => tracing::debug!("job controller double: watch error: {e}"),
                    None => return,
                },
                Some(exit) = self.exits.1.recv() => self.on_exit(exit).await,
                Some(cmd) = commands.recv() => match cmd {
                    Command::Disrupt { namespace, pod, reply } => {
                        let found = self.disrupt(&namespace, &pod).await;
                        let _ = reply.send(found);
                    }
                },
            }
        }
    }

    fn stop_all(entry: &mut Entry, reason: StopReason) {
        for h in entry.pods.values_mut() {
            if let Some(tx) = h.stop.take() {
                let _ = tx.send(reason);
            }
        }
    }

    async fn on_job(&mut self, job: Job) {
        let Some(uid) = job.metadata.uid.clone() else {
            return;
        };
        if job.metadata.deletion_timestamp.is_some() {
            if let Some(e) = self.jobs.get_mut(&uid) {
                Self::stop_all(e, StopReason::Deleted);
            }
            return;
        }
        let Some(spec) = job.spec.clone() else { return };
        if spec
            .managed_by
            .as_deref()
            .is_some_and(|m| m != "kubernetes.io/job-controller")
        {
            return;
        }
        match self.jobs.get_mut(&uid) {
            Some(e) => {
                if e.tracker.update_plan(&spec) {
                    Self::stop_all(e, StopReason::Suspended);
                }
                e.job = job;
            }
            None => {
                let tracker = Tracker::new(&spec, job.status.as_ref());
                let entry = Entry {
                    namespace: job.metadata.namespace.clone().unwrap_or_default(),
                    name: job.metadata.name.clone().unwrap_or_default(),
                    last_status: serde_json::to_value(&job.status).unwrap_or(Value::Null),
                    job,
                    tracker,
                    pods: BTreeMap::new(),
                };
                self.jobs.insert(uid.clone(), entry);
            }
        }
        self.reconcile(&uid).await;
    }

    fn on_deleted(&mut self, job: &Job) {
        let Some(uid) = &job.metadata.uid else { return };
        if let Some(mut e) = self.jobs.remove(uid) {
            Self::stop_all(&mut e, StopReason::Deleted);
        }
    }

    async fn reconcile(&mut self, uid: &str) {
        let Some(e) = self.jobs.get_mut(uid) else {
            return;
        };
        if e.tracker.terminal() && e.pods.is_empty() {
            return;
        }
        e.tracker.evaluate();
        if e.tracker.finish.is_some() {
            Self::stop_all(e, StopReason::JobFinished);
        }
        let starts = e.tracker.to_start();
        for index in starts {
            let Some(e) = self.jobs.get(uid) else { return };
            let (ns, job) = (e.namespace.clone(), e.job.clone());
            match self.start_pod(uid, &ns, &job, index).await {
                Some((pod, handle)) => {
                    let Some(e) = self.jobs.get_mut(uid) else {
                        return;
                    };
                    e.tracker.start();
                    e.tracker.active.insert(pod.clone(), index);
                    e.pods.insert(pod, handle);
                }
                None => break,
            }
        }
        let Some(e) = self.jobs.get_mut(uid) else {
            return;
        };
        e.tracker.settle();
        {
            let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
            let m = r
                .max_active
                .entry((e.namespace.clone(), e.name.clone()))
                .or_insert(0);
            *m = (*m).max(e.tracker.active.len());
        }
        let status = e.tracker.status();
        if status != e.last_status {
            let api: Api<Job> = Api::namespaced(self.client.clone(), &e.namespace);
            let patch = json!({"status": status});
            match api
                .patch_status(&e.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => e.last_status = status,
                Err(err) => tracing::warn!(
                    "job controller double: status of job {}/{}: {err}",
                    e.namespace,
                    e.name
                ),
            }
        }
    }

    /// Creates the Pod object and starts its process.
    async fn start_pod(
        &mut self,
        uid: &str,
        ns: &str,
        job: &Job,
        index: Option<i32>,
    ) -> Option<(String, PodHandle)> {
        let jname = job.metadata.name.clone().unwrap_or_default();
        let template = job.spec.as_ref()?.template.clone();
        let pod_spec = template.spec.clone()?;
        let container = pod_spec.containers.first()?.clone();
        let pod_name = match index {
            Some(i) => format!("{jname}-{i}-{}", suffix()),
            None => format!("{jname}-{}", suffix()),
        };
        let tmeta = template.metadata.clone().unwrap_or_default();
        let mut labels = tmeta.labels.clone().unwrap_or_default();
        let mut annotations = tmeta.annotations.clone().unwrap_or_default();
        labels.insert("batch.kubernetes.io/controller-uid".into(), uid.into());
        labels.insert("batch.kubernetes.io/job-name".into(), jname.clone());
        labels.insert("controller-uid".into(), uid.into());
        labels.insert("job-name".into(), jname.clone());
        if let Some(i) = index {
            labels.insert(
                "batch.kubernetes.io/job-completion-index".into(),
                i.to_string(),
            );
            annotations.insert(
                "batch.kubernetes.io/job-completion-index".into(),
                i.to_string(),
            );
        }
        let mut spec_json = serde_json::to_value(&pod_spec).unwrap_or_default();
        spec_json["nodeName"] = json!("e2e-node");
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": jname, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": spec_json,
        });
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let pod_obj: Pod = serde_json::from_value(pod).ok()?;
        let created = match pods.create(&PostParams::default(), &pod_obj).await {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!("job controller double: creating pod {ns}/{pod_name}: {err}");
                return None;
            }
        };
        let created_json = serde_json::to_value(&created).unwrap_or_default();

        let dir = self.config.workdir.join(ns).join(&pod_name);
        let termination_file = dir.join("termination-log");
        let tpath = container
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into());
        let tfile = termination_file.to_string_lossy().into_owned();
        let mut env = env::container_env(
            &self.client,
            &self.config,
            ns,
            &created_json,
            &container,
            index,
        )
        .await;
        let mounts = volumes::materialize(&self.client, ns, &pod_spec, &container, &dir).await;
        for (_, v) in env.iter_mut() {
            *v = volumes::rewrite(&v.replace(&tpath, &tfile), &mounts);
        }
        env.retain(|(k, _)| k != "HOME");
        env.push(("HOME".into(), dir.to_string_lossy().into_owned()));
        if let Some(var) = &self.config.termination_path_env {
            env.retain(|(k, _)| k != var);
            env.push((var.clone(), tfile.clone()));
        }
        let vars: HashMap<String, String> = env.iter().cloned().collect();
        let image = container.image.clone().unwrap_or_default();
        let mut argv: Vec<String> = match &container.command {
            Some(c) if !c.is_empty() => c.clone(),
            _ => self
                .config
                .entrypoints
                .get(&image)
                .cloned()
                .unwrap_or_default(),
        };
        argv.extend(container.args.clone().unwrap_or_default());
        let mut argv: Vec<String> = argv
            .iter()
            .map(|a| volumes::rewrite(&process::expand(a, &vars).replace(&tpath, &tfile), &mounts))
            .collect();
        if let Some(first) = argv.first_mut() {
            let base = std::path::Path::new(first.as_str())
                .file_name()
                .map(|b| b.to_string_lossy().into_owned());
            if let Some(p) = self
                .config
                .binaries
                .get(first.as_str())
                .or_else(|| base.and_then(|b| self.config.binaries.get(&b)))
            {
                *first = p.to_string_lossy().into_owned();
            }
        }
        let grace = Duration::from_secs(
            pod_spec
                .termination_grace_period_seconds
                .unwrap_or(30)
                .max(0) as u64,
        )
        .min(self.config.grace);
        let launch = Launch {
            argv: argv.clone(),
            env,
            dir: dir.clone(),
            termination_file,
            log_file: dir.join("log"),
            fallback_to_logs: container.termination_message_policy.as_deref()
                == Some("FallbackToLogsOnError"),
            grace,
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let exits = self.exits.0.clone();
        let (uid_s, ns_s, pod_s, cname) = (
            uid.to_string(),
            ns.to_string(),
            pod_name.clone(),
            container.name.clone(),
        );
        let started = if argv.is_empty() {
            Err(process::LaunchError::NoCommand(image.clone()))
        } else {
            Running::spawn(launch)
        };
        let pid = started.as_ref().ok().and_then(Running::pid);
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .runs
            .push(RunRecord {
                namespace: ns.into(),
                job: jname.clone(),
                index,
                pod: pod_name.clone(),
                pid,
                exit_code: None,
                message: None,
            });
        match started {
            Ok(running) => {
                let status = json!({"status": {
                    "phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": now(),
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}],
                    "containerStatuses": [{
                        "name": cname, "image": image, "imageID": "", "ready": true, "started": true,
                        "restartCount": 0, "state": {"running": {"startedAt": now()}}
                    }]
                }});
                if let Err(err) = pods
                    .patch_status(&pod_name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                {
                    tracing::warn!("job controller double: status of pod {ns}/{pod_name}: {err}");
                }
                tokio::spawn(async move {
                    let exit = running.wait(stop_rx).await;
                    let _ = exits.send(PodExit {
                        uid: uid_s,
                        namespace: ns_s,
                        pod: pod_s,
                        container: cname,
                        index,
                        exit,
                    });
                });
            }
            Err(err) => {
                // As a container that cannot start: exit code 128, StartError.
                let exit = Exit {
                    exit_code: 128,
                    message: err.to_string(),
                    stopped: None,
                    started_at: now(),
                    finished_at: now(),
                };
                let _ = exits.send(PodExit {
                    uid: uid_s,
                    namespace: ns_s,
                    pod: pod_s,
                    container: cname,
                    index,
                    exit,
                });
            }
        }
        Some((
            pod_name,
            PodHandle {
                stop: Some(stop_tx),
            },
        ))
    }

    async fn on_exit(&mut self, x: PodExit) {
        {
            let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(rec) = r
                .runs
                .iter_mut()
                .rev()
                .find(|r| r.namespace == x.namespace && r.pod == x.pod)
            {
                rec.exit_code = Some(x.exit.exit_code);
                rec.message = Some(x.exit.message.clone());
            }
        }
        let disrupted = x.exit.stopped == Some(StopReason::Disrupted);
        let ok = x.exit.exit_code == 0 && !disrupted;
        let image = self
            .jobs
            .get(&x.uid)
            .and_then(|e| {
                e.job
                    .spec
                    .as_ref()?
                    .template
                    .spec
                    .as_ref()?
                    .containers
                    .first()?
                    .image
                    .clone()
            })
            .unwrap_or_default();
        let mut status = json!({
            "phase": if ok { "Succeeded" } else { "Failed" },
            "containerStatuses": [{
                "name": x.container, "image": image, "imageID": "", "ready": false, "started": false,
                "restartCount": 0,
                "state": {"terminated": {
                    "exitCode": x.exit.exit_code,
                    "reason": if x.exit.exit_code == 0 { "Completed" } else if x.exit.exit_code == 128 { "StartError" } else { "Error" },
                    "message": x.exit.message,
                    "startedAt": x.exit.started_at,
                    "finishedAt": x.exit.finished_at,
                }}
            }]
        });
        let mut conditions = vec![
            json!({"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now()}),
        ];
        if disrupted {
            conditions.push(json!({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting", "lastTransitionTime": now()}));
        }
        status["conditions"] = json!(conditions);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &x.namespace);
        // The pod may be gone already (cascade deletion); that is fine.
        let _ = pods
            .patch_status(
                &x.pod,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await;
        let Some(e) = self.jobs.get_mut(&x.uid) else {
            return;
        };
        e.pods.remove(&x.pod);
        let outcome = PodOutcome {
            pod: x.pod.clone(),
            namespace: x.namespace.clone(),
            container: x.container.clone(),
            index: x.index,
            exit_code: x.exit.exit_code,
            disrupted,
        };
        let stopped = matches!(
            x.exit.stopped,
            Some(StopReason::Suspended | StopReason::Deleted)
        );
        e.tracker.pod_finished(&outcome, stopped);
        let uid = x.uid.clone();
        self.reconcile(&uid).await;
    }

    async fn disrupt(&mut self, ns: &str, pod: &str) -> bool {
        for e in self.jobs.values_mut() {
            if e.namespace != ns {
                continue;
            }
            if let Some(h) = e.pods.get_mut(pod) {
                if let Some(tx) = h.stop.take() {
                    return tx.send(StopReason::Disrupted).is_ok();
                }
            }
        }
        false
    }
}

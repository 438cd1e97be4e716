//! One pod's life on the process kubelet: prepare (volumes, image, environment, argv; each
//! failure a Waiting reason, retried with back-off), run, stop on deletion, report terminal,
//! finish the deletion.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::watch;

use super::env::{self, Objects};
use super::process::{self, Exit, Launch, Running};
use super::status::{self, now, ContainerState};
use super::volumes::{self, Mount};
use super::{KubeletConfig, Records, RunRecord};

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub config: KubeletConfig,
    pub records: Records,
}

/// Why a container cannot start yet: the kubelet's Waiting reason and message.
struct Waiting {
    reason: &'static str,
    message: String,
}

/// Where a container cannot start at all (the runtime's StartError, exit code 128).
enum Prepared {
    Ready(Launch),
    StartError(String),
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.min(4)).min(5000))
}

fn deleting(rx: &watch::Receiver<Option<Pod>>) -> Option<Duration> {
    match &*rx.borrow() {
        None => Some(Duration::ZERO),
        Some(p) => p.metadata.deletion_timestamp.as_ref().map(|_| {
            let secs = p
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .max(0);
            Duration::from_secs(secs as u64)
        }),
    }
}

struct PodRef {
    api: Api<Pod>,
    ns: String,
    name: String,
    uid: String,
    container: Container,
    image: String,
    start_time: String,
}

impl PodRef {
    async fn patch(&self, state: &ContainerState) {
        let body = status::pod_status(&self.container.name, &self.image, state, &self.start_time);
        if let Err(e) = self
            .api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(&body),
            )
            .await
        {
            tracing::debug!("process kubelet: status of {}/{}: {e}", self.ns, self.name);
        }
    }
}

/// Runs the pod whose latest object `rx` holds (None once it is gone from the API).
pub(crate) async fn run(ctx: std::sync::Arc<Ctx>, mut rx: watch::Receiver<Option<Pod>>) {
    let Some(pod) = rx.borrow().clone() else {
        return;
    };
    let Some(container) = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .cloned()
    else {
        return;
    };
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let p = PodRef {
        api: Api::namespaced(ctx.client.clone(), &ns),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        image: container.image.clone().unwrap_or_default(),
        container,
        ns,
        start_time: now(),
    };
    let mut attempt = 0u32;
    let prepared = loop {
        if deleting(&rx).is_some() {
            finish(&ctx, &p, None).await;
            return delete_now(&p).await;
        }
        let current = rx.borrow().clone().unwrap_or_else(|| pod.clone());
        match prepare(&ctx, &current, &p, attempt).await {
            Ok(prepared) => break prepared,
            Err(w) => {
                p.patch(&ContainerState::Waiting {
                    reason: w.reason.into(),
                    message: w.message,
                })
                .await;
                let _ = tokio::time::timeout(backoff(attempt), rx.changed()).await;
                attempt += 1;
            }
        }
    };
    let exit = match prepared {
        Prepared::Ready(launch) => run_process(&ctx, &p, &pod, launch, &mut rx).await,
        Prepared::StartError(message) => {
            record(&ctx, &p, &pod, None);
            Exit {
                exit_code: 128,
                message,
                stopped: false,
                started_at: now(),
                finished_at: now(),
            }
        }
    };
    finish(&ctx, &p, Some(exit)).await;
    // A deletion that comes after the end is finished too.
    while deleting(&rx).is_none() {
        if rx.changed().await.is_err() {
            return;
        }
    }
    if rx.borrow().is_some() {
        delete_now(&p).await;
    }
}

async fn run_process(
    ctx: &Ctx,
    p: &PodRef,
    pod: &Pod,
    launch: Launch,
    rx: &mut watch::Receiver<Option<Pod>>,
) -> Exit {
    let running = match Running::spawn(launch) {
        Ok(r) => r,
        Err(e) => {
            record(ctx, p, pod, None);
            return Exit {
                exit_code: 128,
                message: e.to_string(),
                stopped: false,
                started_at: now(),
                finished_at: now(),
            };
        }
    };
    record(ctx, p, pod, running.pid());
    p.patch(&ContainerState::Running { started_at: now() })
        .await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let mut wait = tokio::spawn(running.wait(stop_rx));
    let mut stop_tx = Some(stop_tx);
    loop {
        tokio::select! {
            exit = &mut wait => {
                return exit.unwrap_or_else(|e| Exit {
                    exit_code: 255, message: format!("process kubelet: {e}"), stopped: false,
                    started_at: now(), finished_at: now(),
                });
            }
            changed = rx.changed(), if stop_tx.is_some() => {
                let grace = match changed {
                    Err(_) => Some(Duration::ZERO),
                    Ok(()) => deleting(rx),
                };
                if let Some(grace) = grace {
                    if let Some(tx) = stop_tx.take() {
                        let _ = tx.send(grace.min(ctx.config.max_grace));
                    }
                }
            }
        }
    }
}

fn record(ctx: &Ctx, p: &PodRef, pod: &Pod, pid: Option<u32>) {
    let meta = &pod.metadata;
    let job = meta
        .labels
        .as_ref()
        .and_then(|l| l.get("batch.kubernetes.io/job-name"))
        .cloned();
    let index = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
        .and_then(|i| i.parse().ok());
    ctx.records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(RunRecord {
            namespace: p.ns.clone(),
            pod: p.name.clone(),
            uid: p.uid.clone(),
            job,
            index,
            pid,
            exit_code: None,
            message: None,
        });
}

/// Reports the terminal state (`exit` None: deleted before it started).
async fn finish(ctx: &Ctx, p: &PodRef, exit: Option<Exit>) {
    let exit = exit.unwrap_or_else(|| Exit {
        exit_code: 137,
        message: String::new(),
        stopped: true,
        started_at: now(),
        finished_at: now(),
    });
    if let Some(r) = ctx
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter_mut()
        .rev()
        .find(|r| r.uid == p.uid)
    {
        r.exit_code = Some(exit.exit_code);
        r.message = Some(exit.message.clone());
    }
    let reason = if exit.exit_code == 128 && !exit.stopped {
        "StartError".to_string()
    } else {
        status::terminated_reason(exit.exit_code).to_string()
    };
    p.patch(&ContainerState::Terminated {
        exit_code: exit.exit_code,
        reason,
        message: exit.message,
        started_at: exit.started_at,
        finished_at: exit.finished_at,
    })
    .await;
}

async fn delete_now(p: &PodRef) {
    delete_with_no_grace(&p.api, &p.name, &p.uid).await;
}

/// Removes the pod object at once (grace period 0, only if it is still `uid`), as the kubelet
/// finishes a graceful deletion once the containers are gone.
async fn delete_with_no_grace(api: &Api<Pod>, name: &str, uid: &str) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    if let Err(e) = api.delete(name, &dp).await {
        tracing::debug!("process kubelet: deleting pod {name}: {e}");
    }
}

/// Finishes the deletion of a pod that ended before this kubelet saw it being deleted.
pub(crate) async fn finish_deletion(ctx: std::sync::Arc<Ctx>, pod: Pod) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let name = pod.metadata.name.unwrap_or_default();
    delete_with_no_grace(&api, &name, &pod.metadata.uid.unwrap_or_default()).await;
}

/// Everything a container needs before it starts, in the kubelet's order: volumes, image,
/// environment, then the command.
async fn prepare(ctx: &Ctx, pod: &Pod, p: &PodRef, attempt: u32) -> Result<Prepared, Waiting> {
    let cfg = &ctx.config;
    let objects = Objects::new(&ctx.client, &p.ns);
    let dir = cfg
        .workdir
        .join(&p.ns)
        .join(format!("{}-{}", p.name, &p.uid[..p.uid.len().min(8)]));
    let mounts = volumes::materialize(&ctx.client, &objects, pod, &p.container, &dir)
        .await
        .map_err(|message| Waiting {
            reason: "ContainerCreating",
            message,
        })?;
    let Some(image) = cfg.images.get(&p.image) else {
        return Err(Waiting {
            reason: if attempt == 0 {
                "ErrImagePull"
            } else {
                "ImagePullBackOff"
            },
            message: if attempt == 0 {
                format!("failed to pull and unpack image \"{}\": not found in the process kubelet's images", p.image)
            } else {
                format!("Back-off pulling image \"{}\"", p.image)
            },
        });
    };
    let mut base: Vec<(String, String)> = cfg
        .inherit_env
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
        .collect();
    base.extend(image.env.iter().cloned());
    let (host, port) = &cfg.service;
    base.extend([
        ("HOSTNAME".to_string(), p.name.clone()),
        ("HOME".to_string(), dir.to_string_lossy().into_owned()),
        ("KUBERNETES_SERVICE_HOST".to_string(), host.clone()),
        ("KUBERNETES_SERVICE_PORT".to_string(), port.to_string()),
    ]);
    let mut env = env::container_env(&objects, pod, &p.container, base)
        .await
        .map_err(|message| Waiting {
            reason: "CreateContainerConfigError",
            message,
        })?;

    let tpath = p
        .container
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    let termination_file = dir.join("termination-log");
    let tfile = termination_file.to_string_lossy().into_owned();
    let local = |s: &str, mounts: &[Mount]| {
        if s == tpath {
            tfile.clone()
        } else {
            volumes::rewrite(s, mounts)
        }
    };
    for (_, v) in env.iter_mut() {
        *v = local(v, &mounts);
    }
    if let Some(var) = &cfg.termination_path_env {
        env.retain(|(k, _)| k != var);
        env.push((var.clone(), tfile.clone()));
    }
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let mut argv: Vec<String> = p.container.command.clone().unwrap_or_default();
    argv.extend(p.container.args.clone().unwrap_or_default());
    let argv: Vec<String> = argv
        .iter()
        .map(|a| local(&process::expand(a, &vars), &mounts))
        .collect();
    let Some(first) = argv.first() else {
        return Ok(Prepared::StartError(format!(
            "no command specified: image \"{}\" has no entrypoint in the process kubelet",
            p.image
        )));
    };
    let name = Path::new(first)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let exe: Option<&PathBuf> = image
        .binaries
        .get(first)
        .or_else(|| image.binaries.get(&name));
    let Some(exe) = exe.filter(|e| e.is_file()) else {
        return Ok(Prepared::StartError(format!(
            "failed to create containerd task: exec: \"{first}\": executable file not found in $PATH"
        )));
    };
    let mut argv = argv.clone();
    argv[0] = exe.to_string_lossy().into_owned();
    Ok(Prepared::Ready(Launch {
        argv,
        env,
        dir: match &p.container.working_dir {
            Some(w) => PathBuf::from(local(w, &mounts)),
            None => dir.clone(),
        },
        termination_file,
        log_file: dir.join("log"),
        fallback_to_logs: p.container.termination_message_policy.as_deref()
            == Some("FallbackToLogsOnError"),
    }))
}

//! Running the controller: one kube-rs `Controller` per watched namespace (or one for all),
//! owning the stage Jobs, with configurable concurrency and graceful shutdown.
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use nas_api::crd::NASSearch;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::reconcile::{error_policy, reconcile, Context};

/// Which namespaces to watch: all (empty list) or the ones listed.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Namespaces; empty means all.
    pub namespaces: Vec<String>,
}

/// Runs until `shutdown` turns true; then finishes in-flight reconciles and returns.
pub async fn run(
    ctx: Arc<Context>,
    scope: Scope,
    concurrency: u16,
    shutdown: watch::Receiver<bool>,
) {
    let apis: Vec<(Api<NASSearch>, Api<Job>)> = if scope.namespaces.is_empty() {
        vec![(Api::all(ctx.client.clone()), Api::all(ctx.client.clone()))]
    } else {
        scope
            .namespaces
            .iter()
            .map(|ns| {
                (
                    Api::namespaced(ctx.client.clone(), ns),
                    Api::namespaced(ctx.client.clone(), ns),
                )
            })
            .collect()
    };
    let controllers = apis.into_iter().map(|(searches, jobs)| {
        let mut rx = shutdown.clone();
        let stop = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        Controller::new(searches, watcher::Config::default())
            .owns(
                jobs,
                watcher::Config::default().labels("app.kubernetes.io/managed-by=nas-operator"),
            )
            .with_config(ControllerConfig::default().concurrency(concurrency))
            .graceful_shutdown_on(stop)
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|res| async move {
                match res {
                    Ok((obj, _)) => tracing::debug!(search = %obj.name, "reconciled"),
                    Err(e) => warn!(error = %e, "controller error"),
                }
            })
    });
    futures::future::join_all(controllers).await;
    info!("controller stopped");
}

/// Builds a client from the environment (in-cluster service account or kubeconfig).
pub async fn client() -> Result<Client, kube::Error> {
    Client::try_default().await
}

//! Running the controller: one kube-rs `Controller` per watched namespace (or one for all),
//! owning the stage Jobs, with configurable concurrency and graceful shutdown.
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::client::ClientBuilder;
use kube::runtime::controller::{Config as ControllerConfig, Error as ControllerError};
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use tokio::sync::watch;
use tower::util::MapRequestLayer;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::object::SearchObject;
use crate::reconcile::{error_policy, is_conflict, reconcile, Context};

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
    // Searches are listed leniently: one unreadable object must not fail the list for all.
    let apis: Vec<(Api<SearchObject>, Api<Job>)> = if scope.namespaces.is_empty() {
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
                    // Planned from a stale cache: redone shortly, nothing to warn about.
                    Err(ControllerError::ReconcilerFailed(e, obj)) if is_conflict(&e) => {
                        tracing::debug!(search = %obj.name, "status conflict; planning again")
                    }
                    Err(e) => warn!(error = %e, "controller error"),
                }
            })
    });
    futures::future::join_all(controllers).await;
    info!("controller stopped");
}

/// Builds a client from the environment (in-cluster service account or kubeconfig) that
/// counts its requests in `metrics` (`nas_operator_api_requests_total`).
pub async fn client(metrics: Arc<Metrics>) -> Result<Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let count = MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        metrics
            .api_requests
            .get_or_create(&Metrics::method_labels(req.method().as_str()))
            .inc();
        req
    });
    Ok(ClientBuilder::try_from(config)?.with_layer(&count).build())
}

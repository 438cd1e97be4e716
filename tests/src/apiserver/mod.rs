//! A Kubernetes API server double for tests: an HTTP server on 127.0.0.1 that speaks the real
//! REST API (paths, verbs, `Status` errors, watch streams, discovery) for the resources the
//! operator uses, backed by an in-memory store. A `kube::Client` from [`ApiServer::client`]
//! works against it unchanged.
//!
//! Served: v1 Pods, Events, ConfigMaps, Secrets; batch/v1 Jobs; coordination.k8s.io/v1 Leases;
//! events.k8s.io/v1 Events; and the custom resources in [`ApiServerConfig::custom`] (NASSearch
//! by default), each with a status subresource.
//!
//! Known departures from the real server: no authentication, admission or schema validation;
//! `limit`/`continue` are ignored (lists are whole); strategic merge patch is read as a JSON
//! merge patch; server-side apply reports no conflicts (see [`apply`]); Foreground deletion is
//! done synchronously; Namespaces are not objects (any namespace name is accepted).
pub mod apply;
pub mod discovery;
mod http;
pub mod resources;
pub mod selector;
pub mod status;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub use resources::{Propagation, ResourceType};
pub use status::ApiError;
pub use store::Store;

/// What the double serves and how.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// Custom resources (as CRDs would define them) served besides the built-in ones.
    pub custom: Vec<ResourceType>,
    /// Events kept for watches; older resourceVersions get 410 Gone.
    pub max_events: usize,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            custom: vec![ResourceType::nassearch()],
            max_events: 100_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// Errors starting the double.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("binding 127.0.0.1:0 for the API server double: {0}")]
    Bind(#[source] std::io::Error),
    #[error("building a kube client for {url}: {source}")]
    Client {
        url: String,
        #[source]
        source: kube::Error,
    },
}

/// A running API server double; stops when dropped.
pub struct ApiServer {
    addr: SocketAddr,
    store: Arc<Store>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Starts serving on a free port of 127.0.0.1.
    pub async fn start(config: ApiServerConfig) -> Result<ApiServer, ApiServerError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ApiServerError::Bind)?;
        let addr = listener.local_addr().map_err(ApiServerError::Bind)?;
        let mut types = resources::builtins();
        types.extend(config.custom);
        let store = Arc::new(Store::new(types, config.max_events));
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(http::Shared {
            store: store.clone(),
            addr: addr.to_string(),
            shutdown: shutdown_rx.clone(),
            bookmark_interval: config.bookmark_interval,
        });
        let task = tokio::spawn(async move {
            // Connections live in this set: they end with the server.
            let mut conns = tokio::task::JoinSet::new();
            let mut stop = shutdown_rx;
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let shared = shared.clone();
                        conns.spawn(async move {
                            let svc = service_fn(move |req| http::handle(shared.clone(), req));
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    _ = stop.changed() => break,
                }
            }
        });
        Ok(ApiServer {
            addr,
            store,
            shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kube `Config` pointed at the double, default namespace `default`.
    pub fn kube_config(&self) -> kube::Config {
        let uri = self
            .url()
            .parse()
            .expect("a socket address makes a valid URI");
        kube::Config::new(uri)
    }

    /// A kube client pointed at the double.
    pub fn client(&self) -> Result<kube::Client, ApiServerError> {
        kube::Client::try_from(self.kube_config()).map_err(|source| ApiServerError::Client {
            url: self.url(),
            source,
        })
    }

    /// The store, for direct inspection in tests.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Drops the watch history: watches from earlier resourceVersions get 410 Gone.
    pub fn compact(&self) {
        self.store.compact();
    }

    /// Objects of `group`/`plural` in `ns` (all namespaces when None), by namespace and name.
    pub fn objects(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        match self.store.type_id(group, plural) {
            Some(ty) => self.store.list(ty, ns).0,
            None => Vec::new(),
        }
    }

    /// One object, if present.
    pub fn object(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.store
            .type_id(group, plural)
            .and_then(|ty| self.store.get(ty, ns, name).ok())
    }

    /// Stops serving and ends open watches.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Prometheus metrics of the controller and the HTTP endpoints that serve them with the health
//! probes: `/metrics`, `/healthz` (the process is alive) and `/readyz` (the controller runs, or
//! stands by for the leader lease).
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The controller's metrics.
pub struct Metrics {
    registry: Registry,
    /// Reconciles run.
    pub reconciles: Counter,
    /// Reconciles that failed, by error kind.
    pub failures: Family<Labels, Counter>,
    /// Reconcile durations.
    pub reconcile_duration: Histogram,
    /// Candidates scored, per search.
    pub candidates_scored: Family<Labels, Gauge>,
    /// Stage durations, by stage.
    pub stage_duration: Family<Labels, Histogram>,
    /// Requests sent to the API server, by HTTP method (the operator's load on it).
    pub api_requests: Family<Labels, Counter>,
    /// Readiness, set once the controller runs (or waits for the lease).
    pub ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nas_operator");
        let reconciles = Counter::default();
        let failures = Family::<Labels, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let candidates_scored = Family::<Labels, Gauge>::default();
        let stage_duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(10.0, 2.0, 16))
        });
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error kind",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "candidates_scored",
            "Candidates scored, per search",
            candidates_scored.clone(),
        );
        registry.register(
            "stage_duration_seconds",
            "Duration of finished stages, by stage",
            stage_duration.clone(),
        );
        let api_requests = Family::<Labels, Counter>::default();
        registry.register(
            "api_requests",
            "Requests sent to the Kubernetes API server, by HTTP method",
            api_requests.clone(),
        );
        Self {
            registry,
            api_requests,
            reconciles,
            failures,
            reconcile_duration,
            candidates_scored,
            stage_duration,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Labels of one search.
    pub fn search_labels(namespace: &str, name: &str) -> Labels {
        vec![
            ("namespace".into(), namespace.into()),
            ("name".into(), name.into()),
        ]
    }

    /// Labels of one stage.
    pub fn stage_labels(stage: &str) -> Labels {
        vec![("stage".into(), stage.into())]
    }

    /// Labels of one HTTP method.
    pub fn method_labels(method: &str) -> Labels {
        vec![("method".into(), method.into())]
    }

    /// Labels of one error kind.
    pub fn error_labels(kind: &str) -> Labels {
        vec![("error".into(), kind.into())]
    }
}

fn respond(metrics: &Metrics, path: &str) -> Response<Full<Bytes>> {
    let (code, body, ctype) = match path {
        "/metrics" => (
            StatusCode::OK,
            metrics.render(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/healthz" => (StatusCode::OK, "ok\n".to_string(), "text/plain"),
        "/readyz" if metrics.ready.load(Ordering::Relaxed) => {
            (StatusCode::OK, "ok\n".into(), "text/plain")
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting\n".into(),
            "text/plain",
        ),
        _ => (StatusCode::NOT_FOUND, "not found\n".into(), "text/plain"),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    if let Ok(v) = ctype.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves the endpoints on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The bound address: with port 0 the system picks one.
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            () = &mut shutdown => return Ok(()),
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let resp = respond(&metrics, req.uri().path());
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::default();
        m.reconciles.inc();
        m.candidates_scored
            .get_or_create(&Metrics::search_labels("ns", "a"))
            .set(42);
        m.stage_duration
            .get_or_create(&Metrics::stage_labels("score"))
            .observe(120.0);
        let text = m.render();
        assert!(text.contains("nas_operator_reconciles_total 1"), "{text}");
        assert!(
            text.contains("nas_operator_candidates_scored{namespace=\"ns\",name=\"a\"} 42"),
            "{text}"
        );
        assert!(
            text.contains("nas_operator_stage_duration_seconds_count{stage=\"score\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn readiness_follows_the_flag() {
        let m = Metrics::default();
        assert_eq!(
            respond(&m, "/readyz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        m.ready.store(true, Ordering::Relaxed);
        assert_eq!(respond(&m, "/readyz").status(), StatusCode::OK);
        assert_eq!(respond(&m, "/healthz").status(), StatusCode::OK);
        assert_eq!(respond(&m, "/nope").status(), StatusCode::NOT_FOUND);
    }
}

//! `nas-operator`: runs the controller, or prints the CRD.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kube::runtime::events::Reporter;
use nas_operator::controller::{self, Scope};
use nas_operator::leader::{self, LeaseConfig};
use nas_operator::metrics::{self, Metrics};
use nas_operator::reconcile::{Backoff, Context};
use nas_operator::telemetry;
use tokio::sync::watch;
use tracing::{info, warn};

/// Kubernetes operator for neural architecture search: turns `NASSearch` resources into batch
/// Jobs that run `nas-runner` (stage data, score candidates, select, train, evaluate, report)
/// and reports progress and results in the resource's status.
///
/// Without a subcommand it runs the controller (`nas-operator run`).
#[derive(Parser)]
#[command(name = "nas-operator", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the NASSearch CustomResourceDefinition as YAML (pipe it to `kubectl apply -f -`).
    Crd,
    /// Run the controller (the default).
    Run(RunArgs),
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Namespace to watch; repeat or separate with commas. Default: all namespaces.
    #[arg(
        long = "namespace",
        env = "NAS_WATCH_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Searches reconciled at once.
    #[arg(long, env = "NAS_CONCURRENCY", default_value_t = 4)]
    concurrency: u16,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "NAS_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log lines: `text` or `json`.
    #[arg(long, value_enum, env = nas_api::contract::LOG_FORMAT_ENV, default_value = "text")]
    log_format: telemetry::LogFormat,
    /// First retry delay after a failed reconcile (doubles per failure), in seconds.
    #[arg(long, env = "NAS_BACKOFF_BASE_SECONDS", default_value_t = 5)]
    backoff_base_seconds: u64,
    /// Longest retry delay, in seconds.
    #[arg(long, env = "NAS_BACKOFF_MAX_SECONDS", default_value_t = 300)]
    backoff_max_seconds: u64,
    /// Run only while holding a Lease (for more than one replica).
    #[arg(long, env = "NAS_LEADER_ELECT")]
    leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "NAS_LEASE_NAME", default_value = "nas-operator")]
    lease_name: String,
    /// Namespace of the leader Lease (default: the pod's namespace from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease (default: the pod name from POD_NAME).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

/// The run arguments when none are given: the defaults (and environment) declared above.
fn default_run_args() -> RunArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: RunArgs,
    }
    Wrapper::parse_from(["nas-operator"]).args
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => {
            print!("{}", nas_operator::crd_yaml());
            Ok(())
        }
        Some(Command::Run(args)) => run(args),
        None => run(default_run_args()),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(args))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn serve(args: RunArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let client = controller::client(metrics.clone())
        .await
        .context("no Kubernetes configuration found")?;
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(metrics::serve(
        args.metrics_addr,
        metrics.clone(),
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
    ));
    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down");
        let _ = signal_tx.send(true);
    });

    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("nas-operator-{}", std::process::id()));
    let reporter = Reporter {
        controller: "nas-operator".into(),
        instance: Some(identity.clone()),
    };
    let backoff = Backoff {
        base: Duration::from_secs(args.backoff_base_seconds.max(1)),
        max: Duration::from_secs(args.backoff_max_seconds.max(1)),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        reporter,
        metrics.clone(),
        backoff,
    ));
    let scope = Scope {
        namespaces: args.namespaces.clone(),
    };
    metrics
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);

    if args.leader_elect {
        let cfg = LeaseConfig {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity,
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        };
        let mut wait_stop = stop_rx.clone();
        tokio::select! {
            () = leader::acquire(client.clone(), &cfg) => {}
            _ = wait_stop.wait_for(|s| *s) => return Ok(()),
        }
        let lost_tx = stop_tx.clone();
        let hold_client = client.clone();
        tokio::spawn(async move {
            leader::hold(hold_client, &cfg).await;
            warn!("lost the leader lease; stopping");
            let _ = lost_tx.send(true);
        });
    }

    controller::run(ctx, scope, args.concurrency.max(1), stop_rx).await;
    let _ = stop_tx.send(true);
    match http.await {
        Ok(r) => r.context("metrics server failed")?,
        Err(e) => warn!(error = %e, "metrics server task ended abnormally"),
    }
    Ok(())
}

//! `nas-operator`: runs the controller, or prints the CRD.
use clap::{Parser, Subcommand};

/// Kubernetes operator for neural architecture search: turns `NASSearch` resources into batch
/// Jobs that run `nas-runner` (stage data, score candidates, select, train, evaluate, report)
/// and reports progress and results in the resource's status.
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => anyhow::bail!("the CRD is not generated yet"),
        None => anyhow::bail!("the controller is not built yet; see `nas-operator --help`"),
    }
}

//! `nas-runner`: the one binary every Kubernetes Job of a search runs, and the local pipeline.
use clap::{Parser, Subcommand};
use nas_api::contract::{Outcome, Stage};
use nas_runner::stages::bench_cmd;
use nas_runner::stages::stage_cmd::{self, StageArgs};
use std::process::ExitCode;

/// Runs the stages of a neural architecture search: stage a data set into packed shards, score
/// candidate architectures with training-free and light-weight training-based metrics, select the
/// best, train and evaluate them. Each stage reads and writes artifacts in object storage (S3) or
/// a local folder; `local` runs the whole pipeline in one process.
///
/// Exit codes: 0 done, 2 invalid configuration, 3 this shard or candidate cannot be done, anything
/// else a transient failure worth a retry.
#[derive(Parser)]
#[command(name = "nas-runner", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Smoke-check libtorch: build a small conv net, train a few steps, print the losses.
    SelfTest,
    /// Print the size of one architecture as JSON: parameters, multiply-adds, and a breakdown
    /// per stem, cell and head.
    Inspect(nas_runner::stages::inspect::InspectArgs),
    /// Stage: decode, resize and pack the raw data set into shards in the artifact store.
    StageData(StageArgs),
    /// Stage with `--spec`: score this pod's shard of the candidates. Without it: score the
    /// architectures of a file with metrics, one JSON line per architecture, in input order.
    Score(nas_runner::stages::score_cli::ScoreArgs),
    /// Stage: merge the score shards, apply the constraints, rank, keep the top K.
    Select(StageArgs),
    /// Stage: short training of this pod's finalist (`--shard I`, or `JOB_COMPLETION_INDEX`).
    Train(StageArgs),
    /// Stage: final training of the best finalist and its held-out top-1/top-5 error.
    Evaluate(StageArgs),
    /// Stage with `--spec`: summary.json, candidates.csv, report.md and plots. With a folder:
    /// render a finished run's report again (`--ground-truth` adds a benchmark comparison).
    Report(stage_cmd::ReportArgs),
    /// Delete every artifact of a search (the operator's finalizer runs it).
    Cleanup(StageArgs),
    /// Run a whole search (every stage) in this process against a local folder.
    Local(nas_runner::stages::local::LocalArgs),
    /// Download a finished search's summary, reports, table and plots from its `resultsUri`
    /// and print the winner as one JSON line; exit 1 naming how far the search got when it
    /// has not finished, 2 for a bad URI or S3 settings.
    Results(nas_runner::stages::results::ResultsArgs),
    /// Benchmark for bench/run.sh: training images/s on random CIFAR-shaped batches, one JSON
    /// line per net, as bench/reference/train_speed.py.
    TrainBench(bench_cmd::TrainBenchArgs),
    /// Benchmark for bench/run.sh: stage-data's JPEG decode + resize images/s over a tar, one
    /// JSON line per size, as bench/reference/decode_speed.py.
    DecodeBench(bench_cmd::DecodeBenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::StageData(a) => ExitCode::from(stage_cmd::main(Stage::StageData, &a)),
        Command::Select(a) => ExitCode::from(stage_cmd::main(Stage::Select, &a)),
        Command::Train(a) => ExitCode::from(stage_cmd::main(Stage::Train, &a)),
        Command::Evaluate(a) => ExitCode::from(stage_cmd::main(Stage::Evaluate, &a)),
        Command::Report(a) => ExitCode::from(stage_cmd::report(&a)),
        Command::Cleanup(a) => ExitCode::from(stage_cmd::cleanup(&a)),
        Command::Score(args) if args.spec.is_some() => {
            let stage_args = StageArgs {
                spec: args.spec.clone().unwrap_or_default(),
                options: args.stage.clone(),
            };
            ExitCode::from(stage_cmd::main(Stage::Score, &stage_args))
        }
        Command::Score(args) => {
            use nas_runner::stages::score_cli;
            match score_cli::run(&args, &score_cli::default_resolver) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("score: {e}");
                    exit(e.outcome())
                }
            }
        }
        Command::Local(args) => {
            nas_runner::telemetry::init(nas_runner::telemetry::LogFormat::Text);
            match nas_runner::stages::local::run(&args) {
                Ok(summary) => {
                    println!("{}", serde_json::to_string(&summary).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("local: {e}");
                    exit(e.outcome())
                }
            }
        }
        Command::Results(args) => match nas_runner::stages::results::run(&args) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("results: {e}");
                exit(e.outcome())
            }
        },
        Command::SelfTest => match nas_runner::train::smoke::run(30) {
            Ok(report) => {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("self-test failed: {e}");
                exit(Outcome::Failed)
            }
        },
        Command::TrainBench(args) => bench_exit("train-bench", bench_cmd::train_bench(&args)),
        Command::DecodeBench(args) => bench_exit("decode-bench", bench_cmd::decode_bench(&args)),
        Command::Inspect(args) => match nas_runner::stages::inspect::run(&args) {
            Ok(v) => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("inspect: {e}");
                exit(Outcome::InvalidConfig)
            }
        },
    }
}

fn bench_exit(name: &str, r: Result<(), bench_cmd::BenchError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            exit(e.outcome())
        }
    }
}

fn exit(outcome: Outcome) -> ExitCode {
    ExitCode::from(nas_runner::stages::exit_status(outcome))
}

//! `nas-runner local`: a whole search in one process on a small cut of the real Fashion-MNIST,
//! an interrupted run resumed, a bad YAML named by field, and `nas-runner report DIR` with a
//! ground-truth table.
mod bin_util;
mod browser_util;
mod train_util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nas_api::records::{CandidateRecord, Summary, TrainMetrics};

fn yaml(data: &Path, candidates: u32, extra: &str) -> String {
    format!(
        r#"apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata: {{name: tiny-local}}
spec:
  runner: {{image: nas-runner:test}}
  dataset: {{source: "{}", format: fashionMnist, resolution: 28}}
  space: {{name: nb201, channels: 4, cells: 1}}
  sampling: {{candidates: {candidates}, seed: 5, shards: 2}}
  metrics: {{names: [angle_loss, params, synflow], angleLossSteps: 30}}
  selection: {{topK: 2}}
  train: {{preset: short, overrides: {{epochs: 1, batchSize: 64}}}}
  evaluate: {{preset: nb201, overrides: {{epochs: 2, batchSize: 64}}}}
  artifacts: {{bucket: local, credentials: {{fromEnvironment: true}}}}
{extra}"#,
        data.display()
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    data: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("fashion");
        train_util::fashion_subset(&data, "train", 400);
        train_util::fashion_subset(&data, "t10k", 200);
        Fixture { dir, data }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("run")
    }
}

fn local(search: &Path, out: &Path) -> Command {
    let mut c = bin_util::nas_runner(&["local"]);
    c.arg(search)
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu"]);
    c
}

fn run_ok(mut c: Command) -> (Output, String) {
    let out = bin_util::run(&mut c);
    let stderr = bin_util::assert_ok(&out);
    (out, stderr)
}

#[test]
fn a_tiny_search_runs_end_to_end_and_writes_the_report() {
    let f = Fixture::new();
    let search = f.write("s.yaml", &yaml(&f.data, 4, ""));
    let (out, _) = run_ok(local(&search, &f.out()));
    let printed: Summary = serde_json::from_slice(&out.stdout).unwrap();
    let stored: Summary =
        serde_json::from_slice(&std::fs::read(f.out().join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, stored);
    assert_eq!((stored.candidates, stored.scored, stored.seed), (4, 4, 5));
    let winner = stored.winner.as_ref().expect("a winner");
    assert!(winner.top1_err.is_some_and(|e| (0.0..1.0).contains(&e)));
    assert_eq!(stored.finalists.len(), 2);
    assert_eq!(stored.versions["libtorch"], "2.11.0");
    // Every stage's cost is in the summary.
    let stages: Vec<&str> = stored.stage_seconds.keys().map(String::as_str).collect();
    assert_eq!(
        stages,
        ["evaluate", "score", "select", "stage-data", "train"],
        "{:?}",
        stored.stage_seconds
    );
    assert!(stored.stage_seconds.values().all(|s| *s > 0.0));
    // Markdown table cells keep architecture strings whole (their `|` escaped).
    let md_text = std::fs::read_to_string(f.out().join("report.md")).unwrap();
    let finalist_rows: Vec<&str> = md_text
        .lines()
        .skip_while(|l| !l.starts_with("## Finalists"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| ") && l.contains('`'))
        .collect();
    assert_eq!(finalist_rows.len(), 2, "{md_text}");
    for row in finalist_rows {
        let cells = row.replace("\\|", "").matches('|').count() - 1;
        assert_eq!(cells, 5, "{row}");
    }
    let metrics: Vec<&str> = stored
        .correlations
        .iter()
        .map(|c| c.metric.as_str())
        .collect();
    assert_eq!(metrics, ["angle_loss", "params", "search_rank", "synflow"]);

    let csv = std::fs::read_to_string(f.out().join("candidates.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.starts_with("rank,index,arch,params,flops,score,angle_loss.cos,angle_loss.loss,angle_loss.degenerate,params,synflow,excluded,error"));
    let md = std::fs::read_to_string(f.out().join("report.md")).unwrap();
    assert!(md.contains(&winner.arch) && md.contains("Kendall"), "{md}");
    for plot in [
        "angle_loss-vs-params.svg",
        "synflow-vs-params.svg",
        "pareto-accuracy-vs-params.svg",
        "search-score-vs-params.svg",
        "training-loss.svg",
        "stage-seconds.svg",
    ] {
        let svg = std::fs::read_to_string(f.out().join("plots").join(plot)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{plot}"
        );
    }
    // Training records a loss curve every few steps (a one-epoch run still draws a line),
    // which the training plot shows beside the epoch means.
    let train_key = std::fs::read_dir(f.out().join("train"))
        .unwrap()
        .map(|e| e.unwrap().path().join("metrics.json"))
        .find(|p| p.exists())
        .expect("a finalist's metrics.json");
    let trained: TrainMetrics = serde_json::from_slice(&std::fs::read(train_key).unwrap()).unwrap();
    assert!(trained.loss_curve.len() > 1, "{:?}", trained.loss_curve);
    let last = trained.loss_curve.last().unwrap();
    assert!(
        (last.epoch - f64::from(trained.epochs)).abs() < 1e-9,
        "{last:?}"
    );
    // report.html renders in a real browser with no console error, shows the winner and sorts
    // the candidates table on a click.
    let html = f.out().join("report.html");
    let probe = browser_util::probe(&html);
    assert!(probe.errors.is_empty(), "{:?}", probe.errors);
    assert_eq!(probe.winner.as_deref(), Some(winner.arch.as_str()));
    assert_eq!(probe.before.len(), 4);
    let numbers = |v: &[String]| -> Vec<u64> { v.iter().map(|x| x.parse().unwrap()).collect() };
    let (up, down) = (numbers(&probe.ascending), numbers(&probe.descending));
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    let mut all = numbers(&probe.before);
    all.sort();
    assert_eq!(all, up, "sorting keeps every row");
    assert_eq!(probe.plots, 6, "every plot is inline");
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: no external script, style sheet, image or link.
    for fetch in ["src=", "<link", "href=\"http", "url("] {
        assert!(!page.contains(fetch), "the page holds {fetch}");
    }
    assert!(page.contains(&format!("{:.2}%", 100.0 * winner.top1_err.unwrap())));
    if let Some(png) = std::env::var_os("NAS_REPORT_SCREENSHOT") {
        browser_util::screenshot(&html, std::path::Path::new(&png));
    }
    // The artifacts name where they are.
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.out().join("spec.json")).unwrap()).unwrap();
    assert!(spec["artifactsRoot"]
        .as_str()
        .unwrap()
        .starts_with("file://"));

    // `report DIR --ground-truth`: accuracies for the candidates from a benchmark-style table.
    let cands: Vec<CandidateRecord> = std::fs::read_to_string(f.out().join("candidates.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut table = String::from("index,arch,cifar10_test\n");
    for c in &cands {
        table.push_str(&format!(
            "{},{},{}\n",
            c.index,
            c.arch,
            80.0 + c.index as f64
        ));
    }
    let gt = f.write("gt.csv", &table);
    let mut report = bin_util::nas_runner(&["report"]);
    report.arg(f.out()).arg("--ground-truth").arg(&gt);
    let (out, _) = run_ok(report);
    let s: Summary = serde_json::from_slice(&out.stdout).unwrap();
    let g = s.ground_truth.expect("ground truth section");
    assert_eq!(g.matched, 4);
    assert_eq!(
        (g.best_candidate_index, g.best_candidate_accuracy),
        (Some(3), Some(83.0))
    );
    assert_eq!(g.winner_accuracy, Some(80.0 + winner.index as f64));
    assert!(
        s.correlations.iter().all(|c| c.tau_accuracy.is_some()),
        "{:?}",
        s.correlations
    );
    let csv = std::fs::read_to_string(f.out().join("candidates.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("benchmark_accuracy"));

    // A missing column is an error naming the choices.
    let mut bad = Command::new(env!("CARGO_BIN_EXE_nas-runner"));
    bad.arg("report")
        .arg(f.out())
        .arg("--ground-truth")
        .arg(&gt)
        .args(["--ground-truth-column", "imagenet"]);
    let out = bad.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cifar10_test"));
}

#[test]
fn an_interrupted_run_resumes_without_redoing_finished_work() {
    let f = Fixture::new();
    let search = f.write("s.yaml", &yaml(&f.data, 4, ""));
    let mut child = local(&search, &f.out())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (as Ctrl-C or a lost machine would) once selection is done, while training.
    let marker = f.out().join("select/_SUCCESS");
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "select never finished"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was interrupted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!f.out().join("summary.json").exists());
    let shard = std::fs::read(f.out().join("score/shard-00001.jsonl")).unwrap();

    let (out, stderr) = run_ok(local(&search, &f.out()));
    let s: Summary = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s.winner.is_some());
    for done in [
        "staging already done",
        "shard 0 already done",
        "shard 1 already done",
        "select already done",
    ] {
        assert!(stderr.contains(done), "'{done}' missing:\n{stderr}");
    }
    assert_eq!(
        shard,
        std::fs::read(f.out().join("score/shard-00001.jsonl")).unwrap()
    );

    // A third run does nothing but report what is there.
    let (_, stderr) = run_ok(local(&search, &f.out()));
    assert!(
        stderr.contains("evaluation already done") && stderr.contains("report already done"),
        "{stderr}"
    );
}

#[test]
fn a_bad_yaml_is_refused_with_the_field_named() {
    let f = Fixture::new();
    for (name, text, field) in [
        (
            "topk.yaml",
            yaml(&f.data, 4, "").replace("topK: 2", "topK: 0"),
            "topK",
        ),
        (
            "shards.yaml",
            yaml(&f.data, 4, "").replace("shards: 2", "shards: 0"),
            "shards",
        ),
        (
            "format.yaml",
            yaml(&f.data, 4, "").replace("fashionMnist", "fashionMnistt"),
            "fashionMnistt",
        ),
        (
            "source.yaml",
            yaml(&f.data, 4, "").replace(&f.data.display().to_string(), "/no/such/data"),
            "spec.dataset.source",
        ),
    ] {
        let search = f.write(name, &text);
        let out = local(&search, &f.dir.path().join(format!("out-{name}")))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(field),
            "{name}: {field} not named in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = local(&f.dir.path().join("missing.yaml"), &f.out())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

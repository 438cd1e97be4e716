//! `nas-runner local SEARCH.yaml [--out DIR]`: every stage of a search in one process, against a
//! local folder, for users without a cluster.
//!
//! Reads the very YAML a user would `kubectl apply`, validates it with the CRD's rules (an error
//! names the field), and writes the artifact layout of DESIGN.md under `DIR`. Each stage leaves a
//! `_SUCCESS` marker; re-running skips finished stages and candidates, so an interrupted run
//! resumes where it stopped.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nas_api::resolved::{ResolveError, ResolvedSpec};
use nas_api::spec::{RecipePreset, RecipeSpec, SpaceName};
use serde_json::{json, Value};
use thiserror::Error;

use crate::data::{self, Split, StageConfig};
use crate::metrics::{self, fusion, AngleLoss, MetricBatch, MetricContext};
use crate::nn::NetBuilder;
use crate::space::{self, nb201::Nb201Arch, NetOptions};
use crate::store::{LocalStore, ObjectStore};
use crate::train::{self, Recipe, TrainData, TrainOptions};

/// Arguments of `nas-runner local`.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// A NASSearch YAML file (the same you would `kubectl apply`).
    pub search: PathBuf,
    /// Folder for the artifacts (default `runs/<name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Why a local run stopped; `exit_code` follows the stage contract.
#[derive(Debug, Error)]
pub enum LocalError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Undoable(String),
    #[error("{0}")]
    Transient(String),
}

impl LocalError {
    pub fn exit_code(&self) -> u8 {
        match self {
            LocalError::Config(_) => 2,
            LocalError::Undoable(_) => 3,
            LocalError::Transient(_) => 1,
        }
    }
}

fn transient(e: impl std::fmt::Display) -> LocalError {
    LocalError::Transient(e.to_string())
}

/// Reads and validates a NASSearch YAML file.
pub fn load_search(path: &Path) -> Result<ResolvedSpec, LocalError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LocalError::Config(format!("{}: {e}", path.display())))?;
    ResolvedSpec::from_yaml(&text).map_err(|e| match e {
        ResolveError::Invalid(errs) => LocalError::Config(format!(
            "{}: invalid NASSearch: {}",
            path.display(),
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        other => LocalError::Config(format!("{}: {other}", path.display())),
    })
}

fn space_name(spec: &ResolvedSpec) -> &'static str {
    match spec.spec.space.name {
        SpaceName::Nb201 => "nb201",
        SpaceName::Darts => "darts",
    }
}

fn net_options(spec: &ResolvedSpec, classes: usize, channels: i64, side: i64) -> NetOptions {
    NetOptions {
        classes: classes as i64,
        input_channels: channels,
        input_size: side,
        width: spec.spec.space.channels.map(i64::from),
        cells: spec.spec.space.cells.map(i64::from),
        ..NetOptions::default()
    }
}

fn recipe_for(r: &RecipeSpec, seed: u64) -> Result<Recipe, LocalError> {
    let name = match r.preset {
        RecipePreset::Short | RecipePreset::Nb201 => "nb201-cifar",
        RecipePreset::DartsCifar => "darts-cifar",
        RecipePreset::DartsImagenet => "darts-imagenet",
    };
    let o = &r.overrides;
    let mut fields = serde_json::Map::new();
    if matches!(r.preset, RecipePreset::Short) {
        fields.insert("epochs".into(), json!(5));
    }
    if let Some(v) = o.epochs {
        fields.insert("epochs".into(), json!(v));
    }
    if let Some(v) = o.batch_size {
        fields.insert("batch_size".into(), json!(v));
    }
    if let Some(v) = o.learning_rate {
        fields.insert("lr".into(), json!(v));
    }
    if let Some(v) = o.weight_decay {
        fields.insert("weight_decay".into(), json!(v));
    }
    if let Some(v) = o.label_smoothing {
        fields.insert("label_smoothing".into(), json!(v));
    }
    if let Some(v) = o.auxiliary_weight {
        fields.insert("aux_weight".into(), json!(v));
    }
    if let Some(v) = o.drop_path {
        fields.insert("drop_path".into(), json!(v));
    }
    if let Some(v) = o.grad_clip {
        fields.insert("grad_clip".into(), json!(v));
    }
    fields.insert("seed".into(), json!(seed));
    Recipe::with_overrides(name, &Value::Object(fields))
        .map_err(|e| LocalError::Config(format!("recipe: {e}")))
}

/// Runs every stage; returns the summary written to `summary.json`.
pub fn run(args: &LocalArgs) -> Result<Value, LocalError> {
    let resolved = load_search(&args.search)?;
    let device = crate::device::parse_device(&args.device).map_err(LocalError::Config)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&resolved.name));
    std::fs::create_dir_all(&out)
        .map_err(|e| LocalError::Config(format!("{}: {e}", out.display())))?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(&out));
    let spec = &resolved.spec;
    let seed = spec.sampling.seed;
    let mut cost: BTreeMap<&str, f64> = BTreeMap::new();
    let started = Instant::now();
    tracing::info!(search = %resolved.name, out = %out.display(), "local run");

    if !store.exists("spec.json").map_err(transient)? {
        store
            .put("spec.json", resolved.to_json().as_bytes())
            .map_err(transient)?;
    }

    // stage-data
    let t = Instant::now();
    let source = spec
        .dataset
        .source
        .trim_start_matches("file://")
        .to_string();
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let config = StageConfig {
            progress: true,
            ..StageConfig::default()
        };
        data::stage_data(
            &source,
            split,
            store.as_ref(),
            &format!("data/{name}"),
            &config,
        )
        .map_err(|e| match e {
            data::DataError::TooManyBad { .. } => LocalError::Undoable(e.to_string()),
            other => LocalError::Config(format!("spec.dataset.source: {other}")),
        })?;
    }
    cost.insert("stage-data", t.elapsed().as_secs_f64());
    let index = data::ShardIndex::load(store.as_ref(), "data/train").map_err(transient)?;
    let classes = index.classes.len();
    let [channels, side, _] = index.shape.map(|s| s.map(i64::from)).unwrap_or([3, 32, 32]);

    // candidates
    let space = space_name(&resolved);
    let n = spec.sampling.candidates as usize;
    let candidates: Vec<String> = if store.exists("candidates.jsonl").map_err(transient)? {
        let text = String::from_utf8_lossy(&store.get("candidates.jsonl").map_err(transient)?)
            .into_owned();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["arch"].as_str().map(str::to_string))
            .collect()
    } else {
        let archs: Vec<String> = match spec.space.name {
            SpaceName::Nb201 => Nb201Arch::sample_n(n, seed)
                .iter()
                .map(ToString::to_string)
                .collect(),
            SpaceName::Darts => space::darts::Genotype::sample_n(n, seed)
                .iter()
                .map(|g| g.to_json().to_string())
                .collect(),
        };
        let lines: String = archs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}\n", json!({"index": i, "arch": a})))
            .collect();
        store
            .put("candidates.jsonl", lines.as_bytes())
            .map_err(transient)?;
        archs
    };
    let opts = net_options(&resolved, classes, channels, side);
    let build = |arch: &str| -> Result<Box<dyn NetBuilder>, LocalError> {
        space::builder(space, arch, &opts).map_err(|e| LocalError::Config(e.to_string()))
    };

    // score (one shard in a local run)
    let t = Instant::now();
    let metric_names: Vec<&str> = spec.metrics.names.iter().map(|m| m.as_str()).collect();
    let score_key = "score/shard-00000.jsonl";
    if !store
        .exists("score/shard-00000._SUCCESS")
        .map_err(transient)?
    {
        let sample = data::load_balanced_sample(&source, Split::Train, 10, seed)
            .map_err(|e| LocalError::Config(format!("spec.dataset.source: {e}")))?;
        let batch = MetricBatch::from_image_batch(&sample, device).map_err(transient)?;
        let ctx = MetricContext::new(seed, device);
        let mut lines = String::new();
        for (i, arch) in candidates.iter().enumerate() {
            let builder = build(arch)?;
            let mut values = serde_json::Map::new();
            let mut seconds = serde_json::Map::new();
            let mut errors = serde_json::Map::new();
            for name in &metric_names {
                let m = metrics::lookup(name).map_err(|e| LocalError::Config(e.to_string()))?;
                let t = Instant::now();
                match metrics::compute(m, builder.as_ref(), &batch, &ctx) {
                    Ok(v) => {
                        values.insert((*name).into(), json!(v));
                    }
                    Err(e) => {
                        errors.insert((*name).into(), json!(e.to_string()));
                    }
                }
                seconds.insert((*name).into(), json!(t.elapsed().as_secs_f64()));
            }
            tracing::info!(candidate = i, of = candidates.len(), %arch, "scored");
            let mut rec = json!({"index": i, "arch": arch, "metrics": values, "seconds": seconds});
            if !errors.is_empty() {
                rec["errors"] = Value::Object(errors);
            }
            lines.push_str(&format!("{rec}\n"));
        }
        store.put(score_key, lines.as_bytes()).map_err(transient)?;
        store
            .put("score/shard-00000._SUCCESS", b"")
            .map_err(transient)?;
    }
    cost.insert("score", t.elapsed().as_secs_f64());
    let scores: Vec<Value> = String::from_utf8_lossy(&store.get(score_key).map_err(transient)?)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();

    // select: the paper's search rank (angle_loss rank + #Param rank), constraints, top K
    let sizes: Vec<(f64, f64)> = candidates
        .iter()
        .map(|a| build(a).map(|b| (b.param_count() as f64, b.flops() as f64)))
        .collect::<Result<_, _>>()?;
    let (params, flops): (Vec<f64>, Vec<f64>) = sizes.into_iter().unzip();
    let angle: Vec<AngleLoss> = scores
        .iter()
        .map(|r| {
            serde_json::from_value::<AngleLoss>(r["metrics"]["angle_loss"].clone()).unwrap_or(
                AngleLoss {
                    cos: 0.0,
                    loss: 100.0,
                    degenerate: true,
                },
            )
        })
        .collect();
    let rank = if metric_names.contains(&"angle_loss") {
        fusion::search_rank(&angle, &params, &fusion::FusionOptions::default())
    } else {
        None
    }
    .unwrap_or_else(|| params.clone());
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            spec.constraints
                .max_params
                .is_none_or(|m| params[i] <= m as f64)
        })
        .filter(|&i| {
            spec.constraints
                .max_flops
                .is_none_or(|m| flops[i] <= m as f64)
        })
        .collect();
    order.sort_by(|&a, &b| rank[b].total_cmp(&rank[a]).then(a.cmp(&b)));
    if order.is_empty() {
        return Err(LocalError::Undoable(
            "spec.constraints: no candidate meets maxParams/maxFlops".into(),
        ));
    }
    let ranking: String = order
        .iter()
        .enumerate()
        .map(|(r, &i)| {
            format!(
                "{}\n",
                json!({"rank": r + 1, "index": i, "arch": candidates[i], "score": rank[i],
                       "params": params[i], "flops": flops[i]})
            )
        })
        .collect();
    store
        .put("select/ranking.jsonl", ranking.as_bytes())
        .map_err(transient)?;
    let top: Vec<usize> = order
        .iter()
        .copied()
        .take(spec.selection.top_k as usize)
        .collect();
    store
        .put(
            "select/topk.json",
            json!(top
                .iter()
                .map(|&i| json!({"index": i, "arch": candidates[i]}))
                .collect::<Vec<_>>())
            .to_string()
            .as_bytes(),
        )
        .map_err(transient)?;

    // train: short training of each finalist, best by test top-1
    let t = Instant::now();
    let short = recipe_for(&spec.train, seed)?;
    let mut trained: Vec<(usize, f64, Value)> = Vec::new();
    for &i in &top {
        let report = train_or_load(
            &store,
            &format!("train/cand-{i:06}/metrics.json"),
            &format!("train/cand-{i:06}/checkpoints"),
            build(&candidates[i])?.as_ref(),
            &short,
            device,
        )
        .map_err(|e| with_context(e, &format!("training candidate {i}")))?;
        let top1 = report["test"]["top1"].as_f64().unwrap_or(0.0);
        trained.push((i, top1, report));
    }
    cost.insert("train", t.elapsed().as_secs_f64());
    let (winner, _, _) = trained
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .cloned()
        .ok_or_else(|| LocalError::Config("spec.selection.topK: no finalist".into()))?;

    // evaluate: the winner with the evaluation recipe
    let t = Instant::now();
    let eval = train_or_load(
        &store,
        "eval/report.json",
        "eval/checkpoints",
        build(&candidates[winner])?.as_ref(),
        &recipe_for(&spec.evaluate, seed)?,
        device,
    )
    .map_err(|e| with_context(e, "evaluating the winner"))?;
    cost.insert("evaluate", t.elapsed().as_secs_f64());

    // report
    let summary = json!({
        "schema": 1,
        "search": {"namespace": resolved.namespace, "name": resolved.name, "uid": resolved.uid},
        "best": {"index": winner, "arch": candidates[winner], "params": params[winner],
                 "flops": flops[winner], "metrics": scores.get(winner).map(|r| r["metrics"].clone()),
                 "test": eval["test"].clone()},
        "finalists": trained.iter().map(|(i, top1, _)| json!({"index": i, "arch": candidates[*i], "top1": top1})).collect::<Vec<_>>(),
        "seconds": cost,
        "total_seconds": started.elapsed().as_secs_f64(),
        "seed": seed,
        "versions": {"nas-runner": env!("CARGO_PKG_VERSION"), "libtorch": "2.11.0"},
    });
    write_report(
        store.as_ref(),
        &summary,
        &candidates,
        &scores,
        &params,
        &metric_names,
    )?;
    store
        .put(
            "summary.json",
            serde_json::to_string_pretty(&summary)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(transient)?;
    Ok(summary)
}

/// Trains `builder` with `recipe` on the staged data, checkpointing under `ckpt`, and stores the
/// report at `key`; a report already there is returned as is, so a re-run does no work twice.
fn train_or_load(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    ckpt: &str,
    builder: &dyn NetBuilder,
    recipe: &Recipe,
    device: tch::Device,
) -> Result<Value, LocalError> {
    if store.exists(key).map_err(transient)? {
        return serde_json::from_slice(&store.get(key).map_err(transient)?).map_err(transient);
    }
    let data = TrainData::open(store.clone(), "data", recipe).map_err(transient)?;
    let options = TrainOptions {
        device,
        checkpoints: Some((store.as_ref(), ckpt)),
        resume: true,
        stop_after_step: None,
        progress: true,
    };
    let result = train::train(builder, recipe, &data, &options)
        .map_err(|e| LocalError::Undoable(e.to_string()))?;
    let v = json!(result.report);
    store
        .put(key, v.to_string().as_bytes())
        .map_err(transient)?;
    Ok(v)
}

fn with_context(e: LocalError, what: &str) -> LocalError {
    match e {
        LocalError::Undoable(m) => LocalError::Undoable(format!("{what}: {m}")),
        other => other,
    }
}

fn write_report(
    store: &dyn ObjectStore,
    summary: &Value,
    candidates: &[String],
    scores: &[Value],
    params: &[f64],
    metric_names: &[&str],
) -> Result<(), LocalError> {
    let mut csv = format!("index,arch,params,{}\n", metric_names.join(","));
    for (i, arch) in candidates.iter().enumerate() {
        let cells: Vec<String> = metric_names
            .iter()
            .map(|m| match scores.get(i).map(|r| &r["metrics"][*m]) {
                Some(Value::Object(o)) => format!(
                    "cos={} loss={}",
                    o.get("cos").unwrap_or(&Value::Null),
                    o.get("loss").unwrap_or(&Value::Null)
                ),
                Some(v) if !v.is_null() => v.to_string(),
                _ => String::new(),
            })
            .collect();
        csv.push_str(&format!(
            "{i},\"{arch}\",{},{}\n",
            params[i],
            cells.join(",")
        ));
    }
    store
        .put("candidates.csv", csv.as_bytes())
        .map_err(transient)?;
    let best = &summary["best"];
    let md = format!(
        "# NAS search {}\n\nBest architecture: `{}`\n\n| | |\n|---|---|\n| parameters | {} |\n| multiply-adds | {} |\n| test top-1 | {} |\n| test top-5 | {} |\n| total seconds | {:.0} |\n\nFinalists:\n\n{}\n\nEvery candidate with every metric: `candidates.csv`.\n",
        summary["search"]["name"].as_str().unwrap_or(""),
        best["arch"].as_str().unwrap_or(""),
        best["params"],
        best["flops"],
        best["test"]["top1"],
        best["test"]["top5"],
        summary["total_seconds"].as_f64().unwrap_or(0.0),
        summary["finalists"]
            .as_array()
            .map(|f| f.iter().map(|x| format!("- `{}`: top-1 {}", x["arch"].as_str().unwrap_or(""), x["top1"])).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    );
    store.put("report.md", md.as_bytes()).map_err(transient)
}

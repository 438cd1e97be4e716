//! `train`: finalist `i` of `select/topk.json` gets the short training of `spec.train`;
//! `train/cand-NNNNNN/metrics.json`, checkpoints beside it, then `_SUCCESS`.
//!
//! Training resumes from the newest checkpoint, so a retried pod picks up where the killed one
//! stopped. Finalists are compared on their accuracy on the validation share of the training
//! split (`spec.dataset.splits.validationPercent`), which this training never sees; the test
//! split is left to `evaluate`.
use std::time::Instant;

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::crd::CandidateSummary;
use nas_api::layout::{candidate_name, key};
use nas_api::records::{EpochMetrics, LossPoint, RankingEntry, TopK, TrainMetrics, SCHEMA_VERSION};
use nas_api::spec::{DatasetFormat, LrSchedule, RecipePreset, RecipeSpec};

use super::{schema_ok, select, DataShape, Search, StageError, StageResult};
use crate::nn::NetBuilder;
use crate::space::SearchSpace;
use crate::train::recipe::{AugmentKind, Preset};
use crate::train::schedule::Schedule;
use crate::train::{self, Recipe, TrainData, TrainError, TrainOptions, TrainReport};

pub fn metrics_key(candidate: u64) -> String {
    key::train_metrics(&candidate_name(candidate))
}

pub fn success_key(candidate: u64) -> String {
    key::train_success(&candidate_name(candidate))
}

fn checkpoints_prefix(candidate: u64) -> String {
    key::train_checkpoints(&candidate_name(candidate))
}

/// Reads `select/topk.json` (select must have finished).
pub fn load_topk(search: &Search) -> Result<TopK, StageError> {
    if !search.done(select::SUCCESS)? {
        return Err(StageError::transient(
            "select has not finished: select/_SUCCESS is missing",
        ));
    }
    let topk: TopK = search.get_json(select::TOPK)?;
    schema_ok(key::SELECT_TOPK, topk.schema)?;
    Ok(topk)
}

/// Trains finalist `finalist` (0-based position in the top K).
pub fn run(search: &Search, finalist: u32) -> StageResult {
    let k = search.spec().selection.top_k;
    if finalist >= k {
        return Err(StageError::config(format!(
            "finalist index {finalist} is out of range: spec.selection.topK is {k}"
        )));
    }
    search.ensure_spec()?;
    let topk = load_topk(search)?;
    let Some(entry) = topk.entries.get(finalist as usize) else {
        return Ok(TerminationSummary::new(
            Stage::Train,
            Some(finalist),
            Outcome::Skipped,
            format!(
                "only {} candidates met the constraints: no finalist {finalist}",
                topk.entries.len()
            ),
        ));
    };
    let c = entry.index;
    if search.done(&success_key(c))? {
        let m: TrainMetrics = search.get_json(&metrics_key(c))?;
        let mut s = super::skipped(Stage::Train, Some(finalist), &format!("candidate {c}"));
        s.best = Some(candidate_summary(entry, Some(m.best_val_acc)));
        return Ok(s);
    }
    let shape = DataShape::of(search)?;
    let builder = build_for(search, &entry.arch, &shape, &search.spec().train)?;
    let recipe = recipe_for_search(&search.spec().train, search)?;
    let started = Instant::now();
    let label = format!("train [{}/{}]", finalist + 1, topk.entries.len());
    let report = fit(
        search,
        builder.as_ref(),
        &recipe,
        &checkpoints_prefix(c),
        &label,
        Some(search.spec().dataset.splits.validation_percent),
    )
    .map_err(|e| e.context(&format!("training candidate {c}")))?;
    let acc = report.val.as_ref().map_or(f64::NAN, |t| t.top1);
    let metrics = TrainMetrics {
        schema: SCHEMA_VERSION,
        index: c,
        arch: entry.arch.clone(),
        epochs: recipe.epochs as u32,
        best_val_acc: acc,
        history: history(&report),
        loss_curve: loss_curve(&report),
        seconds: started.elapsed().as_secs_f64(),
    };
    search.put_json(&metrics_key(c), &metrics)?;
    search.mark_done(&success_key(c))?;
    let mut s = TerminationSummary::new(
        Stage::Train,
        Some(finalist),
        Outcome::Succeeded,
        format!(
            "candidate {c}: {:.2}% validation top-1 ({}% of the training split held out) after {} epochs",
            100.0 * acc,
            search.spec().dataset.splits.validation_percent,
            recipe.epochs
        ),
    );
    s.best = Some(candidate_summary(entry, Some(acc)));
    s.values.insert("seconds".into(), metrics.seconds);
    if let Some(step) = report.resumed_from_step {
        s.values.insert("resumedFromStep".into(), step as f64);
    }
    s.artifacts = vec![metrics_key(c), success_key(c)];
    Ok(s)
}

/// The network a recipe trains: the scored one, unless the recipe's overrides set another
/// width or depth (DARTS evaluation networks are wider and deeper than the scored ones).
pub(crate) fn build_for(
    search: &Search,
    arch: &str,
    shape: &DataShape,
    recipe: &RecipeSpec,
) -> Result<Box<dyn NetBuilder>, StageError> {
    build_trained(search.space(), arch, search.net_options(shape), recipe)
}

/// `build_for` on explicit options: the recipe's width and depth overrides, and the auxiliary
/// head when the recipe weights its loss (DARTS; a feature map too small for the head trains
/// without it, with a warning).
fn build_trained(
    space: &dyn SearchSpace,
    arch: &str,
    mut opts: crate::nn::NetOptions,
    recipe: &RecipeSpec,
) -> Result<Box<dyn NetBuilder>, StageError> {
    if let Some(c) = recipe.overrides.channels {
        opts.width = Some(i64::from(c));
    }
    if let Some(c) = recipe.overrides.cells {
        opts.cells = Some(i64::from(c));
    }
    opts.auxiliary = recipe_for(recipe, 0)?.aux_weight > 0.0;
    let built = match space.builder(arch, &opts) {
        Err(crate::space::SpaceError::Option {
            option: "auxiliary",
            message,
        }) => {
            tracing::warn!(%arch, "training without the auxiliary head: {message}");
            opts.auxiliary = false;
            space.builder(arch, &opts)
        }
        other => other,
    };
    built.map_err(|e| StageError::config(format!("architecture '{arch}': {e}")))
}

/// A ranking entry as the status shows it (accuracy in percent).
pub(crate) fn candidate_summary(e: &RankingEntry, acc: Option<f64>) -> CandidateSummary {
    CandidateSummary {
        rank: e.rank,
        val_accuracy: super::percent(acc),
        ..super::status_candidate(e.index, &e.arch, e.params, e.flops)
    }
}

/// Trains `builder` on the staged data, checkpointing under `checkpoints` and resuming from
/// the newest checkpoint there; `label` heads its progress. `validation_percent` holds that
/// share of the training split out of training and evaluates on it.
pub(crate) fn fit(
    search: &Search,
    builder: &dyn NetBuilder,
    recipe: &Recipe,
    checkpoints: &str,
    label: &str,
    validation_percent: Option<u32>,
) -> Result<TrainReport, StageError> {
    let data =
        TrainData::open_with_validation(search.store.clone(), "data", recipe, validation_percent)
            .map_err(train_error)?;
    let options = TrainOptions {
        device: search.device,
        checkpoints: Some((search.store.as_ref(), checkpoints)),
        resume: true,
        stop_after_step: None,
        stop_on_request: true,
        progress: search.progress,
        label: label.to_string(),
    };
    let report = train::train(builder, recipe, &data, &options)
        .map(|t| t.report)
        .map_err(train_error)?;
    if !report.finished {
        return Err(StageError::interrupted(format!(
            "stopped on request at step {} of {}; checkpoint {} is kept and the next pod resumes from it",
            report.steps,
            report.steps_total,
            report.last_checkpoint.as_deref().unwrap_or("(none)")
        )));
    }
    Ok(report)
}

fn train_error(e: TrainError) -> StageError {
    match e {
        TrainError::Config(_) => StageError::config(e.to_string()),
        TrainError::Store(s) => StageError::from(s),
        TrainError::Data(d) => super::data_stage::data_error(d, "staged data"),
        // Diverged, out of memory, a broken checkpoint: this candidate cannot be done.
        other => StageError::undoable(other.to_string()),
    }
}

/// The loss curve from the trainer's report, its x axis in epochs.
pub(crate) fn loss_curve(report: &TrainReport) -> Vec<LossPoint> {
    let spe = report.steps_per_epoch.max(1) as f64;
    report
        .loss_curve
        .iter()
        .map(|&(step, loss)| LossPoint {
            step: step as u64,
            epoch: step as f64 / spe,
            loss,
        })
        .collect()
}

/// Per-epoch history from the trainer's report.
pub(crate) fn history(report: &TrainReport) -> Vec<EpochMetrics> {
    report
        .epoch_losses
        .iter()
        .enumerate()
        .map(|(i, &loss)| EpochMetrics {
            epoch: i as u32 + 1,
            train_loss: loss,
            train_acc: None,
            val_loss: None,
            val_acc: None,
            lr: None,
            seconds: None,
        })
        .collect()
}

/// The recipe of `r` for this search's data. ImageNet-style data (image folders, WebDataset)
/// is staged at varying sizes (short side `resolution * 8/7`), which the CIFAR-style presets'
/// pad-and-crop cannot batch: it trains at `dataset.resolution` with the ImageNet augmentation
/// (RandomResizedCrop and flip), whatever the preset.
pub(crate) fn recipe_for_search(r: &RecipeSpec, search: &Search) -> Result<Recipe, StageError> {
    let mut recipe = recipe_for(r, search.seed())?;
    let d = &search.spec().dataset;
    if matches!(
        d.format,
        DatasetFormat::ImageFolder | DatasetFormat::WebDataset
    ) {
        recipe.image_side.get_or_insert(d.resolution);
        if recipe.augment == AugmentKind::Cifar {
            recipe.augment = AugmentKind::Imagenet;
        }
    }
    Ok(recipe)
}

/// Epochs of the `short` preset: the NB201 recipe cut short, enough to order the top-K.
const SHORT_EPOCHS: usize = 5;

/// The trainer's recipe for a spec's recipe section: the preset, then the overrides.
pub(crate) fn recipe_for(r: &RecipeSpec, seed: u64) -> Result<Recipe, StageError> {
    let preset = match r.preset {
        RecipePreset::Short | RecipePreset::Nb201 => Preset::Nb201Cifar,
        RecipePreset::DartsCifar => Preset::DartsCifar,
        RecipePreset::DartsImagenet => Preset::DartsImagenet,
    };
    let base = Recipe::preset(preset);
    let mut recipe = base.clone();
    if matches!(r.preset, RecipePreset::Short) {
        recipe.epochs = SHORT_EPOCHS;
    }
    let o = &r.overrides;
    if let Some(v) = o.epochs {
        recipe.epochs = v as usize;
    }
    if let Some(v) = o.batch_size {
        recipe.batch_size = v as usize;
    }
    recipe.lr = o.learning_rate.unwrap_or(recipe.lr);
    recipe.weight_decay = o.weight_decay.unwrap_or(recipe.weight_decay);
    recipe.label_smoothing = o.label_smoothing.unwrap_or(recipe.label_smoothing);
    recipe.aux_weight = o.auxiliary_weight.unwrap_or(recipe.aux_weight);
    recipe.drop_path = o.drop_path.unwrap_or(recipe.drop_path);
    recipe.grad_clip = o.grad_clip.or(recipe.grad_clip);
    if let Some(s) = o.schedule {
        recipe.schedule = match s {
            LrSchedule::Cosine => Schedule::Cosine { min_lr: 0.0 },
            // DARTS on ImageNet: x0.97 every epoch.
            LrSchedule::Step => Schedule::Step {
                every_epochs: 1.0,
                gamma: 0.97,
            },
        };
    }
    recipe.seed = seed;
    // The spec has no warm-up field: the preset's share applies to a shorter run.
    recipe.keep_warmup_share(&base, false);
    recipe
        .validate()
        .map_err(|e| StageError::config(format!("recipe {}: {e}", preset.name())))?;
    Ok(recipe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Forward;
    use nas_api::spec::RecipeOverrides;
    use tch::{Device, Kind, Tensor};

    fn darts() -> &'static dyn SearchSpace {
        crate::space::for_name(nas_api::spec::SpaceName::Darts)
    }

    fn recipe(preset: RecipePreset) -> RecipeSpec {
        RecipeSpec {
            preset,
            overrides: RecipeOverrides {
                channels: Some(8),
                cells: Some(5),
                ..Default::default()
            },
        }
    }

    fn trains_aux_logits(b: &dyn NetBuilder, side: i64) -> bool {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = b.build(&vs.root());
        let mut f = Forward::train();
        let x = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
        let _ = net.forward(&x, &mut f);
        f.aux_logits.is_some()
    }

    #[test]
    fn darts_recipes_train_the_auxiliary_head_their_loss_weights() {
        let opts = crate::nn::NetOptions::default();
        let b = build_trained(
            darts(),
            "DARTS_V2",
            opts.clone(),
            &recipe(RecipePreset::DartsCifar),
        )
        .unwrap();
        assert!(trains_aux_logits(b.as_ref(), 32));
        // An auxiliary weight of 0 builds no head.
        let mut no_aux = recipe(RecipePreset::DartsCifar);
        no_aux.overrides.auxiliary_weight = Some(0.0);
        let b = build_trained(darts(), "DARTS_V2", opts.clone(), &no_aux).unwrap();
        assert!(!trains_aux_logits(b.as_ref(), 32));
        // A feature map too small for the head: trained without it, not refused.
        let small = crate::nn::NetOptions {
            input_size: 8,
            ..opts
        };
        let b = build_trained(
            darts(),
            "DARTS_V2",
            small,
            &recipe(RecipePreset::DartsCifar),
        )
        .unwrap();
        assert!(!trains_aux_logits(b.as_ref(), 8));
    }
}

//! The training loop and evaluation.
//!
//! One step: reseed libtorch from (seed, step) (drop-path and any other torch randomness then
//! depend on the step alone, which is what makes resumption exact), forward in train mode with
//! the epoch's drop-path probability, label-smoothed cross-entropy plus the weighted auxiliary
//! loss, backward, optional global-norm clipping, SGD at the scheduled rate. Checkpoints every
//! `checkpoint_every` steps, when stopped early, and at the end; `resume` continues from the
//! newest. Data-parallel training over several GPUs is not implemented: one device per run.
use super::checkpoint::{self, CheckpointState};
use super::optim::Sgd;
use super::recipe::{AugmentKind, Recipe};
use super::schedule::LrSchedule;
use super::TrainError;
use crate::data::augment::Augment;
use crate::data::shards::join_key;
use crate::data::{Loader, LoaderConfig};
use crate::nn::{Forward, Net, NetBuilder};
use crate::progress::Progress;
use crate::store::ObjectStore;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// Staged training and test splits with loaders configured from a recipe.
pub struct TrainData {
    pub train: Loader,
    /// The share of the training split held out for validation, when one is.
    pub val: Option<Loader>,
    pub test: Option<Loader>,
    pub classes: Vec<String>,
    pub side: u32,
}

impl TrainData {
    /// Opens `{data_prefix}/train` (and `{data_prefix}/test` when staged) of `store`.
    pub fn open(
        store: Arc<dyn ObjectStore>,
        data_prefix: &str,
        recipe: &Recipe,
    ) -> Result<TrainData, TrainError> {
        Self::open_with_validation(store, data_prefix, recipe, None)
    }

    /// Like [`TrainData::open`], holding `validation_percent` of the training split out of
    /// training as the validation set (seeded by the recipe's seed).
    pub fn open_with_validation(
        store: Arc<dyn ObjectStore>,
        data_prefix: &str,
        recipe: &Recipe,
        validation_percent: Option<u32>,
    ) -> Result<TrainData, TrainError> {
        recipe.validate()?;
        let train_prefix = join_key(data_prefix, "train");
        let probe = crate::data::ShardIndex::load(store.as_ref(), &train_prefix)?;
        let side = match (recipe.image_side, probe.shape) {
            (Some(s), _) => s,
            (None, Some([_, h, w])) if h == w => h,
            _ => {
                return Err(TrainError::Config(format!(
                    "{train_prefix}: staged images vary in size; set the recipe's image_side"
                )))
            }
        };
        let augment = match recipe.augment {
            AugmentKind::None => Augment {
                cutout: recipe.cutout,
                ..Augment::eval(side)
            },
            AugmentKind::Cifar => Augment::cifar(side, recipe.cutout),
            AugmentKind::Imagenet => Augment {
                cutout: recipe.cutout,
                ..Augment::imagenet(side)
            },
        };
        if let Some(p) = validation_percent.filter(|p| !(1..=50).contains(p)) {
            return Err(TrainError::Config(format!(
                "validationPercent {p}: expected 1 to 50"
            )));
        }
        let holdout = |held| {
            validation_percent.map(|percent| crate::data::loader::Holdout {
                percent,
                seed: recipe.seed,
                held,
            })
        };
        let config = LoaderConfig {
            shuffle_buffer: recipe.shuffle_buffer,
            holdout: holdout(false),
            ..LoaderConfig::train(recipe.batch_size, augment, recipe.seed)
        };
        let train = Loader::new(store.clone(), &train_prefix, config)?;
        let val = match holdout(true) {
            Some(h) => Some(Loader::new(
                store.clone(),
                &train_prefix,
                LoaderConfig {
                    holdout: Some(h),
                    ..LoaderConfig::eval(recipe.eval_batch_size, side)
                },
            )?),
            None => None,
        };
        if let (Some(v), Some(p)) = (&val, validation_percent) {
            if v.is_empty() {
                return Err(TrainError::Config(format!(
                    "spec.dataset.splits.validationPercent {p}: holds out none of the {} \
                     training images; raise it or stage more data",
                    train.len()
                )));
            }
        }
        let test_prefix = join_key(data_prefix, "test");
        let test = if store.exists(&join_key(&test_prefix, nas_api::layout::SUCCESS_MARKER))? {
            Some(Loader::new(
                store,
                &test_prefix,
                LoaderConfig::eval(recipe.eval_batch_size, side),
            )?)
        } else {
            None
        };
        Ok(TrainData {
            classes: probe.classes,
            train,
            val,
            test,
            side,
        })
    }
}

/// Where and how to run.
pub struct TrainOptions<'a> {
    pub device: Device,
    /// Store and key prefix for checkpoints; `None`: no checkpoints and no resumption.
    pub checkpoints: Option<(&'a dyn ObjectStore, &'a str)>,
    /// Continue from the newest checkpoint under the prefix, when one exists.
    pub resume: bool,
    /// Stop (with a checkpoint) once this many steps are done, schedule unchanged.
    pub stop_after_step: Option<usize>,
    /// Stop the same way when a stop is requested ([`crate::interrupt`]: SIGTERM).
    pub stop_on_request: bool,
    /// A step bar on a terminal, one line per epoch otherwise, on stderr.
    pub progress: bool,
    /// What the progress shows first ("train [2/3]"); empty: "train".
    pub label: String,
}

impl TrainOptions<'_> {
    pub fn cpu() -> Self {
        TrainOptions {
            device: Device::Cpu,
            checkpoints: None,
            resume: false,
            stop_after_step: None,
            stop_on_request: false,
            progress: false,
            label: String::new(),
        }
    }
}

/// Top-1/top-5 accuracy (fractions) and mean loss over a split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalResult {
    pub top1: f64,
    pub top5: f64,
    pub loss: f64,
    pub images: usize,
}

/// Points of a run's loss curve: enough for a smooth line, few enough for a small report.
pub const CURVE_POINTS: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub arch: String,
    pub recipe: String,
    pub device: String,
    pub steps: usize,
    pub steps_total: usize,
    /// False when stopped by `stop_after_step`.
    pub finished: bool,
    pub resumed_from_step: Option<usize>,
    /// Mean training loss of each finished epoch.
    pub epoch_losses: Vec<f64>,
    /// `(step, mean loss of the steps since the previous point)`, at most [`CURVE_POINTS`]
    /// points over the whole run.
    pub loss_curve: Vec<(usize, f64)>,
    pub steps_per_epoch: usize,
    pub last_loss: f64,
    /// On the held-out validation share of the training split, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val: Option<EvalResult>,
    pub test: Option<EvalResult>,
    pub seconds: f64,
    /// Training images per second of this invocation (excluding evaluation).
    pub images_per_second: f64,
    pub last_checkpoint: Option<String>,
}

/// A trained network and its parameters.
pub struct Trained {
    pub vs: VarStore,
    pub net: Box<dyn Net>,
    pub report: TrainReport,
}

fn step_seed(seed: u64, step: usize) -> i64 {
    let mut x = seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    (x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 1) as i64
}

/// Cross-entropy with label smoothing `eps`: `(1 - eps) * nll + eps * mean_k(-log p_k)`.
pub fn smoothed_cross_entropy(logits: &Tensor, labels: &Tensor, eps: f64) -> Tensor {
    let logp = logits.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
    let nll = -logp.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1);
    if eps == 0.0 {
        return nll.mean(Kind::Float);
    }
    let uniform = -logp.mean_dim(&[-1i64][..], false, Kind::Float);
    (nll * (1.0 - eps) + uniform * eps).mean(Kind::Float)
}

/// What changes from one optimiser step to the next.
pub struct StepHyper {
    /// Learning rate of this step (the schedule's).
    pub lr: f64,
    /// Drop-path probability of this epoch.
    pub drop_path: f64,
    /// Mixed precision (CUDA only).
    pub autocast: bool,
}

/// One optimiser step of `recipe` on the batch `(x, y)`: forward in training mode (BN batch
/// statistics, drop-path drawn from libtorch's generator), the label-smoothed loss plus the
/// auxiliary head's weighted loss, backward, gradient clipping, the SGD update. Returns the
/// loss before the update.
pub fn step(
    net: &dyn Net,
    opt: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    recipe: &Recipe,
    hyper: &StepHyper,
) -> f64 {
    step_replaying(net, opt, x, y, recipe, hyper, None)
}

/// [`step`] with its drop-path masks given (front first, in forward order) instead of drawn:
/// how a test replays a reference trainer's random draws.
pub fn step_replaying(
    net: &dyn Net,
    opt: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    recipe: &Recipe,
    hyper: &StepHyper,
    drop_path_masks: Option<std::collections::VecDeque<Tensor>>,
) -> f64 {
    let mut f = Forward {
        drop_path_prob: hyper.drop_path,
        drop_path_masks,
        ..Forward::train()
    };
    let logits = tch::autocast(hyper.autocast, || net.forward(x, &mut f));
    let mut loss = smoothed_cross_entropy(&logits, y, recipe.label_smoothing);
    if let (Some(aux), true) = (f.aux_logits.take(), recipe.aux_weight > 0.0) {
        loss += smoothed_cross_entropy(&aux, y, recipe.label_smoothing) * recipe.aux_weight;
    }
    opt.zero_grad();
    loss.backward();
    if let Some(max) = recipe.grad_clip {
        opt.clip_grad_norm(max);
    }
    opt.step(hyper.lr);
    loss.double_value(&[])
}

/// Trains the network `builder` describes with `recipe` on `data`.
pub fn train(
    builder: &dyn NetBuilder,
    recipe: &Recipe,
    data: &TrainData,
    options: &TrainOptions,
) -> Result<Trained, TrainError> {
    recipe.validate()?;
    if builder.num_classes() as usize != data.classes.len() {
        return Err(TrainError::Config(format!(
            "network has {} classes, data set {}",
            builder.num_classes(),
            data.classes.len()
        )));
    }
    let started = Instant::now();
    let device = options.device;
    tch::manual_seed(step_seed(recipe.seed, usize::MAX));
    let mut vs = VarStore::new(device);
    let net = builder.build(&vs.root());
    crate::nn::use_channels_last(&vs, device);
    let mut opt = Sgd::new(&vs, recipe.momentum, recipe.nesterov, recipe.weight_decay);
    let spe = data.train.batches_per_epoch();
    if spe == 0 {
        return Err(TrainError::Config(format!(
            "batch size {} is larger than the {} training images",
            recipe.batch_size,
            data.train.len()
        )));
    }
    let schedule = LrSchedule::new(
        recipe.lr,
        recipe.schedule.clone(),
        spe,
        recipe.epochs,
        recipe.warmup_epochs,
    );
    let total = schedule.total_steps;
    let mut state = CheckpointState {
        step: 0,
        epoch: 0,
        batch_in_epoch: 0,
        arch: builder.arch(),
        recipe: recipe.clone(),
        epoch_loss_sum: 0.0,
        epoch_loss_count: 0,
        epoch_losses: Vec::new(),
        last_loss: f64::NAN,
        curve: Vec::new(),
        curve_sum: 0.0,
        curve_count: 0,
    };
    let curve_every = total.div_ceil(CURVE_POINTS).max(1);
    let mut resumed_from_step = None;
    let mut last_checkpoint = None;
    if let (Some((store, prefix)), true) = (options.checkpoints, options.resume) {
        if let Some(name) = checkpoint::latest(store, prefix)? {
            let loaded = checkpoint::load(store, prefix, &name, &mut vs, &mut opt)?;
            if loaded.arch != state.arch || loaded.recipe != *recipe {
                return Err(TrainError::Checkpoint {
                    key: join_key(prefix, &name),
                    detail: "written for another architecture or recipe".into(),
                });
            }
            resumed_from_step = Some(loaded.step);
            last_checkpoint = Some(name);
            state = loaded;
        }
    }
    let first_step = state.step;
    let label = match options.label.as_str() {
        "" => "train",
        l => l,
    };
    let mut progress = Progress::counter(
        format!("{label} {}", state.arch),
        Some((total - first_step) as u64),
        "steps",
        options.progress,
    );
    let save =
        |state: &CheckpointState, vs: &VarStore, opt: &Sgd| -> Result<Option<String>, TrainError> {
            match options.checkpoints {
                Some((store, prefix)) => checkpoint::save(store, prefix, vs, opt, state).map(Some),
                None => Ok(None),
            }
        };
    let mut stopped = false;
    'epochs: while state.step < total {
        let epoch = state.step / spe;
        let skip = state.step % spe;
        let drop_path = recipe.drop_path_at(epoch);
        let mut seen = skip;
        for batch in data.train.epoch(epoch, skip) {
            let batch = batch?;
            seen += 1;
            tch::manual_seed(step_seed(recipe.seed, state.step));
            let x = batch.images.to_device(device);
            let y = batch.labels.to_device(device);
            let hyper = StepHyper {
                lr: schedule.lr(state.step),
                drop_path,
                autocast: recipe.autocast && device.is_cuda(),
            };
            let value = step(net.as_ref(), &mut opt, &x, &y, recipe, &hyper);
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    step: state.step,
                    epoch,
                    loss: value,
                });
            }
            state.step += 1;
            state.last_loss = value;
            state.epoch_loss_sum += value;
            state.epoch_loss_count += 1;
            state.curve_sum += value;
            state.curve_count += 1;
            if state.step.is_multiple_of(curve_every) || state.step == total {
                let mean = state.curve_sum / state.curve_count as f64;
                state.curve.push((state.step, mean));
                state.curve_sum = 0.0;
                state.curve_count = 0;
            }
            state.epoch = state.step / spe;
            state.batch_in_epoch = state.step % spe;
            if state.batch_in_epoch == 0 {
                state
                    .epoch_losses
                    .push(state.epoch_loss_sum / state.epoch_loss_count.max(1) as f64);
                state.epoch_loss_sum = 0.0;
                state.epoch_loss_count = 0;
                progress.note(&format!(
                    "epoch {}/{} loss {:.4} lr {:.5} ({:.0} images/s)",
                    epoch + 1,
                    recipe.epochs,
                    state.epoch_losses.last().copied().unwrap_or(f64::NAN),
                    schedule.lr(state.step - 1),
                    ((state.step - first_step) * recipe.batch_size) as f64
                        / started.elapsed().as_secs_f64()
                ));
            }
            progress.advance(1);
            let periodic =
                recipe.checkpoint_every > 0 && state.step.is_multiple_of(recipe.checkpoint_every);
            let stop = options.stop_after_step.is_some_and(|s| state.step >= s)
                || (options.stop_on_request && crate::interrupt::requested());
            if periodic || stop {
                if let Some(name) = save(&state, &vs, &opt)? {
                    last_checkpoint = Some(name);
                }
            }
            if stop {
                stopped = true;
                break 'epochs;
            }
            if state.batch_in_epoch == 0 {
                break;
            }
        }
        if !stopped && seen < spe && state.step < total && state.step / spe == epoch {
            return Err(TrainError::Config(format!(
                "epoch {epoch} ended after {seen} of {spe} batches"
            )));
        }
    }
    let train_seconds = started.elapsed().as_secs_f64();
    if !stopped
        && last_checkpoint.as_deref() != Some(checkpoint::checkpoint_name(state.step).as_str())
    {
        if let Some(name) = save(&state, &vs, &opt)? {
            last_checkpoint = Some(name);
        }
    }
    let eval_on = |loader: &Option<Loader>| match (loader, stopped) {
        (Some(loader), false) => evaluate(net.as_ref(), loader, device).map(Some),
        _ => Ok(None),
    };
    let val = eval_on(&data.val)?;
    let test = eval_on(&data.test)?;
    let report = TrainReport {
        arch: state.arch.clone(),
        recipe: recipe.name.clone(),
        device: format!("{device:?}"),
        steps: state.step,
        steps_total: total,
        finished: !stopped,
        resumed_from_step,
        epoch_losses: state.epoch_losses.clone(),
        loss_curve: state.curve.clone(),
        steps_per_epoch: spe,
        last_loss: state.last_loss,
        val,
        test,
        seconds: started.elapsed().as_secs_f64(),
        images_per_second: ((state.step - first_step) * recipe.batch_size) as f64
            / train_seconds.max(1e-9),
        last_checkpoint,
    };
    Ok(Trained { vs, net, report })
}

/// Top-1/top-5 accuracy and mean cross-entropy of `net` over every batch of `loader`.
pub fn evaluate(net: &dyn Net, loader: &Loader, device: Device) -> Result<EvalResult, TrainError> {
    let (mut top1, mut top5, mut loss_sum, mut n) = (0i64, 0i64, 0f64, 0usize);
    for batch in loader.epoch(0, 0) {
        let batch = batch?;
        let x = batch.images.to_device(device);
        let y = batch.labels.to_device(device);
        let logits = tch::no_grad(|| net.forward(&x, &mut Forward::eval())).to_kind(Kind::Float);
        let b = y.size()[0];
        let k = logits.size()[1].min(5);
        let (_, idx) = logits.topk(k, -1, true, true);
        let correct = idx.eq_tensor(&y.unsqueeze(1));
        top1 += correct.narrow(1, 0, 1).sum(Kind::Int64).int64_value(&[]);
        top5 += correct.sum(Kind::Int64).int64_value(&[]);
        loss_sum += logits.cross_entropy_for_logits(&y).double_value(&[]) * b as f64;
        n += b as usize;
    }
    if n == 0 {
        return Err(TrainError::Config(
            "evaluation split holds no images".into(),
        ));
    }
    Ok(EvalResult {
        top1: top1 as f64 / n as f64,
        top5: top5 as f64 / n as f64,
        loss: loss_sum / n as f64,
        images: n,
    })
}

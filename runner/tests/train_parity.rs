//! The trainer step for step against PyTorch (issue 22): the runner's `trainer::step`, `Sgd`
//! and `LrSchedule` train a small network from the initial weights and on the batches of a
//! fixture that PyTorch's own SGD, LR schedulers, `cross_entropy(label_smoothing=)` and
//! `clip_grad_norm_` trained, and must give the same rate and loss at every step, the same
//! weights and BN running statistics after the last one, and the same eval-mode logits. CI has
//! no PyTorch, hence the committed fixtures (`tests/fixtures/train_parity*.*`; remake them with
//! the scripts named below after a change to the reference).
//! - NB201 (`bench/reference/train_parity.py`): plain SGD at a constant rate; Nesterov momentum
//!   with weight decay under a warm-up then cosine decay; heavy-ball momentum under a step decay
//!   across epoch boundaries; label smoothing with gradient clipping.
//! - DARTS (`bench/reference/train_parity_darts.py`): the auxiliary head's weighted loss and
//!   drop-path growing per epoch, the masks PyTorch drew replayed (`trainer::step_replaying`),
//!   under the DARTS CIFAR and ImageNet recipes' ingredients.
use std::collections::{HashMap, VecDeque};
use std::path::Path;

use nas_runner::nn::{Forward, Net, NetOptions};
use nas_runner::space;
use nas_runner::train::optim::Sgd;
use nas_runner::train::recipe::{Preset, Recipe};
use nas_runner::train::schedule::{LrSchedule, Schedule};
use nas_runner::train::trainer::{step_replaying, StepHyper};
use serde::Deserialize;
use tch::{nn::VarStore, Device, Kind, Tensor};

#[derive(Deserialize)]
struct Fixture {
    #[serde(default = "nb201")]
    space: String,
    arch: String,
    width: i64,
    cells: i64,
    classes: i64,
    side: i64,
    steps_per_epoch: usize,
    epochs: usize,
    lr: f64,
    /// Weights too large to keep whole are kept as every `sample_stride`-th value.
    #[serde(default)]
    sample_stride: i64,
    cases: Vec<Case>,
}

fn nb201() -> String {
    "nb201".into()
}

#[derive(Deserialize)]
struct Case {
    name: String,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    schedule: Schedule,
    warmup_epochs: f64,
    label_smoothing: f64,
    grad_clip: Option<f64>,
    #[serde(default)]
    aux_weight: f64,
    #[serde(default)]
    drop_path: f64,
}

/// Largest loss difference at any step. Float32 rounding differs between libtorch's kernels as
/// the runner calls them and as PyTorch's modules do; a few SGD steps grow it to about 1e-6.
const LOSS_TOL: f64 = 1e-4;
/// Largest weight or logit difference: `ABS_TOL + REL_TOL * (the tensor's largest magnitude)`.
/// Measured: at most 2e-6 of the magnitude; the absolute floor is for the parameters whose
/// gradient is zero but for rounding (BN of an edge into an output-less node: magnitudes of 1e-9).
const REL_TOL: f64 = 1e-4;
const ABS_TOL: f64 = 1e-6;
/// Where the fixture says how far PyTorch's float32 run is from its float64 run (DARTS: a batch
/// of 4 under drop-path has near-ties that SGD amplifies), that many times the distance is also
/// allowed: the runner's float32 may round the other way, as far again, plus margin.
const ROUNDING_FACTOR: f64 = 4.0;

fn fixture_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// The largest difference of `ours` from `theirs` as a share of what the tolerances allow
/// (at most 1 passes); `rounding`: PyTorch's own float32-to-float64 distance, where known.
fn excess(ours: &Tensor, theirs: &Tensor, rounding: f64) -> f64 {
    let scale = theirs.abs().max().double_value(&[]);
    (ours - theirs).abs().max().double_value(&[])
        / (ABS_TOL + REL_TOL * scale + ROUNDING_FACTOR * rounding)
}

/// The fixture `tests/fixtures/<stem>.{json,safetensors}`.
struct Loaded {
    fx: Fixture,
    tensors: HashMap<String, Tensor>,
}

impl Loaded {
    fn open(stem: &str) -> Loaded {
        let dir = fixture_dir();
        let json = std::fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap();
        let tensors = Tensor::read_safetensors(dir.join(format!("{stem}.safetensors")))
            .unwrap()
            .into_iter()
            .collect();
        Loaded {
            fx: serde_json::from_str(&json).unwrap(),
            tensors,
        }
    }

    /// PyTorch's float32-to-float64 distance of `key` (`<case>.rounding.<what>`, element
    /// `i`); 0 where the fixture does not record it.
    fn rounding(&self, case: &str, what: &str, i: i64) -> f64 {
        self.tensors
            .get(&format!("{case}.rounding.{what}"))
            .map_or(0.0, |t| t.double_value(&[i]))
    }

    fn get(&self, k: &str) -> Tensor {
        self.tensors
            .get(k)
            .unwrap_or_else(|| panic!("fixture has no tensor {k}"))
            .shallow_clone()
    }

    /// The drop-path masks PyTorch drew in each step of `case`, as the runner's forward pass
    /// takes them; `None` where the fixture recorded none (no drop-path in the case).
    fn masks(&self, case: &str) -> Option<Vec<VecDeque<Tensor>>> {
        let counts = self.tensors.get(&format!("{case}.mask_count"))?;
        let all = self.get(&format!("{case}.masks"));
        let mut next = 0i64;
        let per_step = (0..counts.size()[0])
            .map(|s| {
                let n = counts.int64_value(&[s]);
                let step = (next..next + n)
                    .map(|i| all.get(i).view([-1, 1, 1, 1]))
                    .collect();
                next += n;
                step
            })
            .collect();
        assert_eq!(next, all.size()[0], "{case}: mask counts do not add up");
        Some(per_step)
    }
}

/// Trains every case of fixture `stem` with the runner's step and compares; returns one line
/// per case saying how close it came.
fn check_fixture(stem: &str, preset: Preset) -> Vec<String> {
    let _rng = nas_runner::testkit::rng_lock();
    tch::set_num_threads(1);
    let l = Loaded::open(stem);
    let fx = &l.fx;
    let opts = NetOptions {
        classes: fx.classes,
        input_size: fx.side,
        width: Some(fx.width),
        cells: Some(fx.cells),
        auxiliary: fx.cases.iter().any(|c| c.aux_weight > 0.0),
        ..NetOptions::default()
    };
    let builder = space::builder(&fx.space, &fx.arch, &opts).unwrap();
    let inits = l.tensors.keys().filter(|k| k.starts_with("init.")).count();
    let mut report = Vec::new();
    for case in &fx.cases {
        let vs = VarStore::new(Device::Cpu);
        let net = builder.build(&vs.root());
        // (our variable path, the reference's name), every variable loaded with its init.
        let mut names = Vec::new();
        for (path, mut var) in vs.variables() {
            let name = builder
                .exchange_name(&path)
                .unwrap_or_else(|| panic!("{path} has no exchange name"));
            tch::no_grad(|| var.copy_(&l.get(&format!("init.{name}"))));
            names.push((path, name));
        }
        assert_eq!(
            names.len(),
            inits,
            "{stem}: the reference has other tensors"
        );
        let recipe = Recipe {
            lr: fx.lr,
            epochs: fx.epochs,
            momentum: case.momentum,
            nesterov: case.nesterov,
            weight_decay: case.weight_decay,
            schedule: case.schedule.clone(),
            warmup_epochs: case.warmup_epochs,
            label_smoothing: case.label_smoothing,
            grad_clip: case.grad_clip,
            aux_weight: case.aux_weight,
            drop_path: case.drop_path,
            ..Recipe::preset(preset)
        };
        recipe.validate().unwrap();
        let worst_loss = train_case(&l, case, &recipe, &vs, net.as_ref());
        let (worst_weight, d_logits) = compare_final(&l, case, &vs, &names, net.as_ref());
        report.push(format!(
            "{}: loss within {worst_loss:.1e}; weights at {worst_weight:.3} and eval logits at {d_logits:.3} of the tolerance",
            case.name
        ));
    }
    report
}

/// Runs the case's steps, asserting each rate, drop-path probability and loss against the
/// reference's; returns the largest loss difference.
fn train_case(l: &Loaded, case: &Case, recipe: &Recipe, vs: &VarStore, net: &dyn Net) -> f64 {
    let fx = &l.fx;
    let (xs, ys) = (l.get("batch.x"), l.get("batch.y"));
    let steps = fx.steps_per_epoch * fx.epochs;
    assert_eq!(xs.size()[0] as usize, steps);
    let mut opt = Sgd::new(vs, recipe.momentum, recipe.nesterov, recipe.weight_decay);
    let schedule = LrSchedule::new(
        recipe.lr,
        recipe.schedule.clone(),
        fx.steps_per_epoch,
        recipe.epochs,
        recipe.warmup_epochs,
    );
    let want = |k: &str| l.get(&format!("{}.{k}", case.name));
    let (want_lr, want_loss) = (want("lr"), want("loss"));
    let mut masks = l.masks(&case.name).map(VecDeque::from);
    let mut worst_loss: f64 = 0.0;
    for s in 0..steps {
        let lr = schedule.lr(s);
        let ref_lr = want_lr.double_value(&[s as i64]);
        assert!(
            (lr - ref_lr).abs() <= 1e-12 * ref_lr.abs().max(1.0),
            "{}: step {s}: rate {lr}, PyTorch's scheduler {ref_lr}",
            case.name
        );
        let drop_path = recipe.drop_path_at(s / fx.steps_per_epoch);
        if case.drop_path > 0.0 {
            let ref_p = want("drop_prob").double_value(&[s as i64]);
            assert!(
                (drop_path - ref_p).abs() <= 1e-12,
                "{}: step {s}: drop-path {drop_path}, the reference's {ref_p}",
                case.name
            );
        }
        let hyper = StepHyper {
            lr,
            drop_path,
            autocast: false,
        };
        let step_masks = masks.as_mut().map(|m| m.pop_front().unwrap());
        let (x, y) = (xs.get(s as i64), ys.get(s as i64));
        let loss = step_replaying(net, &mut opt, &x, &y, recipe, &hyper, step_masks);
        let ref_loss = want_loss.double_value(&[s as i64]);
        worst_loss = worst_loss.max((loss - ref_loss).abs());
        let tol = LOSS_TOL + ROUNDING_FACTOR * l.rounding(&case.name, "loss", s as i64);
        assert!(
            (loss - ref_loss).abs() <= tol,
            "{}: step {s}: loss {loss}, PyTorch {ref_loss}",
            case.name
        );
    }
    worst_loss
}

/// Compares the weights and BN statistics after the last step and the eval-mode logits with
/// the reference's; returns both worst shares of the tolerance.
fn compare_final(
    l: &Loaded,
    case: &Case,
    vs: &VarStore,
    names: &[(String, String)],
    net: &dyn Net,
) -> (f64, f64) {
    let want = |k: &str| l.get(&format!("{}.{k}", case.name));
    let mut worst_weight: f64 = 0.0;
    for (path, name) in names {
        let ours = &vs.variables()[path];
        let (ours, theirs) = match l.tensors.get(&format!("{}.final.{name}", case.name)) {
            Some(t) => (ours.shallow_clone(), t.shallow_clone()),
            None => (
                ours.flatten(0, -1)
                    .slice(0, None, None, l.fx.sample_stride.max(1)),
                want(&format!("final_sample.{name}")),
            ),
        };
        let rounding = l.rounding(&case.name, &format!("final.{name}"), 0);
        let d = excess(&ours, &theirs, rounding);
        worst_weight = worst_weight.max(d);
        assert!(
            d <= 1.0,
            "{}: {name} after the last step differs by {d:.2} tolerances",
            case.name
        );
    }
    let logits = tch::no_grad(|| net.forward(&l.get("eval.x"), &mut Forward::eval()));
    let rounding = l.rounding(&case.name, "eval_logits", 0);
    let d_logits = excess(&logits.to_kind(Kind::Float), &want("eval_logits"), rounding);
    assert!(
        d_logits <= 1.0,
        "{}: eval-mode logits differ by {d_logits:.2} tolerances",
        case.name
    );
    (worst_weight, d_logits)
}

#[test]
fn the_trainer_steps_as_pytorch_does() {
    eprintln!(
        "{}",
        check_fixture("train_parity", Preset::Nb201Cifar).join("\n")
    );
}

#[test]
fn the_auxiliary_head_and_drop_path_step_as_pytorch_does() {
    eprintln!(
        "{}",
        check_fixture("train_parity_darts", Preset::DartsCifar).join("\n")
    );
}

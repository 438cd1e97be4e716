//! The trainer step for step against PyTorch (issue 22): the runner's `trainer::step`, `Sgd`
//! and `LrSchedule` train a small NB201 network from the initial weights and on the batches of
//! the fixture that `bench/reference/train_parity.py` made with PyTorch's own SGD, LR
//! schedulers, `cross_entropy(label_smoothing=)` and `clip_grad_norm_`, and must give the same
//! rate and loss at every step, the same weights and BN running statistics after the last one,
//! and the same eval-mode logits. CI has no PyTorch, hence the committed fixture
//! (`tests/fixtures/train_parity.*`; remake it with that script after a change to the
//! reference). The cases: plain SGD at a constant rate; Nesterov momentum with weight decay under
//! a warm-up then cosine decay; heavy-ball momentum under a step decay across epoch boundaries;
//! label smoothing with gradient clipping. Not covered: the DARTS auxiliary head and drop-path.
use std::collections::HashMap;
use std::path::Path;

use nas_runner::nn::{Forward, NetOptions};
use nas_runner::space;
use nas_runner::train::optim::Sgd;
use nas_runner::train::recipe::{Preset, Recipe};
use nas_runner::train::schedule::{LrSchedule, Schedule};
use nas_runner::train::trainer::{step, StepHyper};
use serde::Deserialize;
use tch::{nn::VarStore, Device, Kind, Tensor};

#[derive(Deserialize)]
struct Fixture {
    arch: String,
    width: i64,
    cells: i64,
    classes: i64,
    side: i64,
    steps_per_epoch: usize,
    epochs: usize,
    lr: f64,
    cases: Vec<Case>,
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
}

/// Largest loss difference at any step. Float32 rounding differs between libtorch's kernels as
/// the runner calls them and as PyTorch's modules do; nine SGD steps grow it to about 1e-6.
const LOSS_TOL: f64 = 1e-4;
/// Largest weight or logit difference: `ABS_TOL + REL_TOL * (the tensor's largest magnitude)`.
/// Measured: at most 2e-6 of the magnitude; the absolute floor is for the parameters whose
/// gradient is zero but for rounding (BN of an edge into an output-less node: magnitudes of 1e-9).
const REL_TOL: f64 = 1e-4;
const ABS_TOL: f64 = 1e-6;

fn fixture_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// The largest difference of `ours` from `theirs` as a share of what the tolerances allow
/// (at most 1 passes).
fn excess(ours: &Tensor, theirs: &Tensor) -> f64 {
    let scale = theirs.abs().max().double_value(&[]);
    (ours - theirs).abs().max().double_value(&[]) / (ABS_TOL + REL_TOL * scale)
}

#[test]
fn the_trainer_steps_as_pytorch_does() {
    let _rng = nas_runner::testkit::rng_lock();
    tch::set_num_threads(1);
    let dir = fixture_dir();
    let fx: Fixture =
        serde_json::from_str(&std::fs::read_to_string(dir.join("train_parity.json")).unwrap())
            .unwrap();
    let tensors: HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("train_parity.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let get = |k: &str| {
        tensors
            .get(k)
            .unwrap_or_else(|| panic!("fixture has no tensor {k}"))
            .shallow_clone()
    };
    let opts = NetOptions {
        classes: fx.classes,
        input_size: fx.side,
        width: Some(fx.width),
        cells: Some(fx.cells),
        ..NetOptions::default()
    };
    let builder = space::builder("nb201", &fx.arch, &opts).unwrap();
    let (xs, ys, x_eval) = (get("batch.x"), get("batch.y"), get("eval.x"));
    let steps = fx.steps_per_epoch * fx.epochs;
    assert_eq!(xs.size()[0] as usize, steps);
    let mut report = Vec::new();
    for case in &fx.cases {
        let vs = VarStore::new(Device::Cpu);
        let net = builder.build(&vs.root());
        let mut names = Vec::new();
        for (path, mut var) in vs.variables() {
            let name = builder
                .exchange_name(&path)
                .unwrap_or_else(|| panic!("{path} has no exchange name"));
            tch::no_grad(|| var.copy_(&get(&format!("init.{name}"))));
            names.push((path, name));
        }
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
            ..Recipe::preset(Preset::Nb201Cifar)
        };
        recipe.validate().unwrap();
        let mut opt = Sgd::new(&vs, recipe.momentum, recipe.nesterov, recipe.weight_decay);
        let schedule = LrSchedule::new(
            recipe.lr,
            recipe.schedule.clone(),
            fx.steps_per_epoch,
            recipe.epochs,
            recipe.warmup_epochs,
        );
        let (want_lr, want_loss) = (
            get(&format!("{}.lr", case.name)),
            get(&format!("{}.loss", case.name)),
        );
        let mut worst_loss: f64 = 0.0;
        for s in 0..steps {
            let lr = schedule.lr(s);
            let ref_lr = want_lr.double_value(&[s as i64]);
            assert!(
                (lr - ref_lr).abs() <= 1e-12 * ref_lr.abs().max(1.0),
                "{}: step {s}: rate {lr}, PyTorch's scheduler {ref_lr}",
                case.name
            );
            let hyper = StepHyper {
                lr,
                drop_path: 0.0,
                autocast: false,
            };
            let loss = step(
                net.as_ref(),
                &mut opt,
                &xs.get(s as i64),
                &ys.get(s as i64),
                &recipe,
                &hyper,
            );
            let ref_loss = want_loss.double_value(&[s as i64]);
            worst_loss = worst_loss.max((loss - ref_loss).abs());
            assert!(
                (loss - ref_loss).abs() <= LOSS_TOL,
                "{}: step {s}: loss {loss}, PyTorch {ref_loss}",
                case.name
            );
        }
        let mut worst_weight: f64 = 0.0;
        for (path, name) in &names {
            let ours = &vs.variables()[path];
            let theirs = get(&format!("{}.final.{name}", case.name));
            let d = excess(ours, &theirs);
            worst_weight = worst_weight.max(d);
            assert!(
                d <= 1.0,
                "{}: {name} after {steps} steps differs by {d:.2} tolerances",
                case.name
            );
        }
        let logits = tch::no_grad(|| net.forward(&x_eval, &mut Forward::eval()));
        let d_logits = excess(
            &logits.to_kind(Kind::Float),
            &get(&format!("{}.eval_logits", case.name)),
        );
        assert!(
            d_logits <= 1.0,
            "{}: eval-mode logits differ by {d_logits:.2} tolerances",
            case.name
        );
        report.push(format!(
            "{}: loss within {worst_loss:.1e}; weights at {worst_weight:.3} and eval logits at {d_logits:.3} of the tolerance",
            case.name
        ));
    }
    eprintln!("{}", report.join("\n"));
}

//! The trainer end to end: Fashion-MNIST stage -> train -> evaluate at tiny scale, and a run
//! resumed from a mid-epoch checkpoint reproducing the uninterrupted run bit for bit (CPU, one
//! thread).
mod train_util;

use nas_runner::data::{stage_data, Split, StageConfig};
use nas_runner::store::{LocalStore, ObjectStore};
use nas_runner::train::{train, Recipe, TrainData, TrainError, TrainOptions};
use std::sync::Arc;
use tch::Tensor;
use train_util::*;

fn stage_fashion(tmp: &std::path::Path, train_n: usize, test_n: usize) -> Arc<dyn ObjectStore> {
    let raw = tmp.join("fashion-mnist");
    fashion_subset(&raw, "train", train_n);
    fashion_subset(&raw, "t10k", test_n);
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(tmp.join("store")));
    let config = StageConfig {
        images_per_shard: 128,
        progress: false,
        ..Default::default()
    };
    for (split, prefix) in [(Split::Train, "data/train"), (Split::Test, "data/test")] {
        stage_data(
            raw.to_str().unwrap(),
            split,
            store.as_ref(),
            prefix,
            &config,
        )
        .unwrap();
    }
    store
}

fn params(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn fashion_stage_train_evaluate() {
    let _serial = nas_runner::testkit::rng_lock();
    tch::set_num_threads(2);
    let tmp = tempfile::tempdir().unwrap();
    let store = stage_fashion(tmp.path(), 600, 200);
    let recipe = Recipe::with_overrides(
        "nb201-cifar",
        &serde_json::json!({"epochs": 8, "batch_size": 32, "lr": 0.1, "weight_decay": 1e-4, "seed": 3}),
    )
    .unwrap();
    let data = TrainData::open(store.clone(), "data", &recipe).unwrap();
    assert_eq!(data.side, 28);
    assert_eq!(data.classes.len(), 10);
    let net = TinyBuilder {
        channels: 1,
        side: 28,
        classes: 10,
        aux: false,
    };
    let ckpt = LocalStore::new(tmp.path().join("ckpt"));
    let options = TrainOptions {
        checkpoints: Some((&ckpt as &dyn ObjectStore, "train/tiny")),
        ..TrainOptions::cpu()
    };
    let trained = train(&net, &recipe, &data, &options).unwrap();
    let r = &trained.report;
    eprintln!("{}", serde_json::to_string(r).unwrap());
    assert!(r.finished);
    assert_eq!(r.steps, 8 * (600 / 32));
    assert_eq!(r.epoch_losses.len(), 8);
    assert!(
        r.epoch_losses[7] < r.epoch_losses[0],
        "loss did not fall: {:?}",
        r.epoch_losses
    );
    let test = r.test.as_ref().unwrap();
    assert_eq!(test.images, 200);
    assert!(
        test.top1 > 0.45,
        "top-1 {:.3} on Fashion-MNIST after 8 epochs",
        test.top1
    );
    assert!(test.top5 >= test.top1 && test.top5 > 0.85);
    assert!(ckpt.exists("train/tiny/latest").unwrap());
    // Wrong class count is a configuration error.
    let wrong = TinyBuilder {
        channels: 1,
        side: 28,
        classes: 7,
        aux: false,
    };
    assert!(matches!(
        train(&wrong, &recipe, &data, &TrainOptions::cpu()),
        Err(TrainError::Config(_))
    ));
}

#[test]
fn resume_from_mid_run_checkpoint_is_bit_exact() {
    let _serial = nas_runner::testkit::rng_lock();
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().unwrap();
    let store = stage_fashion(tmp.path(), 200, 40);
    // Every feature that touches state or randomness: warm-up + step schedule, Nesterov,
    // label smoothing, auxiliary loss, drop-path, clipping, cutout, a small shuffle buffer.
    let recipe = Recipe::with_overrides(
        "darts-cifar",
        &serde_json::json!({
            "epochs": 3, "batch_size": 24, "lr": 0.05, "nesterov": true, "warmup_epochs": 1.0,
            "schedule": {"kind": "step", "every_epochs": 2.0, "gamma": 0.5},
            "label_smoothing": 0.1, "shuffle_buffer": 50, "checkpoint_every": 5, "seed": 9
        }),
    )
    .unwrap();
    let data = TrainData::open(store.clone(), "data", &recipe).unwrap();
    let net = TinyBuilder {
        channels: 1,
        side: 28,
        classes: 10,
        aux: true,
    };
    let whole = train(&net, &recipe, &data, &TrainOptions::cpu()).unwrap();
    assert_eq!(whole.report.steps, 3 * (200 / 24));

    let ckpt = LocalStore::new(tmp.path().join("ckpt"));
    let stop = TrainOptions {
        checkpoints: Some((&ckpt as &dyn ObjectStore, "eval")),
        stop_after_step: Some(12),
        ..TrainOptions::cpu()
    };
    let first = train(&net, &recipe, &data, &stop).unwrap();
    assert!(!first.report.finished);
    assert_eq!(first.report.steps, 12);
    assert_eq!(
        first.report.last_checkpoint.as_deref(),
        Some("step-00000012")
    );
    // Only the two newest checkpoints are kept (5 was pruned, 10 and 12 remain).
    assert!(!ckpt.exists("eval/step-00000005/model.ot").unwrap());
    assert!(ckpt.exists("eval/step-00000010/model.ot").unwrap());
    drop(first);
    let resume = TrainOptions {
        checkpoints: Some((&ckpt as &dyn ObjectStore, "eval")),
        resume: true,
        ..TrainOptions::cpu()
    };
    let second = train(&net, &recipe, &data, &resume).unwrap();
    assert_eq!(second.report.resumed_from_step, Some(12));
    assert!(second.report.finished);
    assert_eq!(
        second.report.epoch_losses, whole.report.epoch_losses,
        "loss history differs"
    );
    assert_eq!(second.report.test, whole.report.test);
    // The loss curve continues where the checkpoint left it: same steps, same means (its
    // tallies go through JSON, so within rounding), and a point at the last step.
    let steps =
        |r: &nas_runner::train::TrainReport| r.loss_curve.iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(steps(&second.report), steps(&whole.report));
    assert_eq!(steps(&whole.report).last(), Some(&whole.report.steps));
    for (a, b) in second
        .report
        .loss_curve
        .iter()
        .zip(&whole.report.loss_curve)
    {
        assert!(
            (a.1 - b.1).abs() <= 1e-9 * b.1.abs(),
            "curve point {a:?} against {b:?}"
        );
    }
    for ((n1, a), (n2, b)) in params(&whole.vs).iter().zip(params(&second.vs).iter()) {
        assert_eq!(n1, n2);
        assert!(a.equal(b), "parameter {n1} differs after resumption");
    }
    // A checkpoint of another recipe is refused.
    let other = Recipe {
        lr: 0.07,
        ..recipe.clone()
    };
    let err = train(&net, &other, &data, &resume)
        .err()
        .expect("resumed another recipe's checkpoint");
    assert!(matches!(err, TrainError::Checkpoint { .. }), "{err}");
}

#[test]
fn a_validation_share_without_images_is_a_configuration_error() {
    let _serial = nas_runner::testkit::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let store = stage_fashion(tmp.path(), 60, 20);
    let recipe =
        Recipe::with_overrides("nb201-cifar", &serde_json::json!({"batch_size": 4})).unwrap();
    let err = TrainData::open_with_validation(store.clone(), "data", &recipe, Some(1))
        .err()
        .expect("1% of 60 images held out something");
    assert!(matches!(err, TrainError::Config(_)), "{err}");
    assert!(err.to_string().contains("validationPercent 1"), "{err}");
    let data = TrainData::open_with_validation(store, "data", &recipe, Some(50)).unwrap();
    let val = data.val.as_ref().unwrap().len();
    assert!(val > 0 && val + data.train.len() == 60, "{val}");
}

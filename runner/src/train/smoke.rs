//! A tiny end-to-end training run that proves libtorch is linked and works (used by
//! `nas-runner self-test` and the smoke test).
use serde::Serialize;
use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};

#[derive(Debug, Serialize)]
pub struct SmokeReport {
    pub device: String,
    pub libtorch_cuda: bool,
    pub first_loss: f64,
    pub last_loss: f64,
    pub steps: usize,
}

/// Trains a two-conv net on a fixed random batch for `steps` SGD steps on the default device.
pub fn run(steps: usize) -> Result<SmokeReport, tch::TchError> {
    tch::manual_seed(0);
    let device = Device::cuda_if_available();
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::conv2d(
            &root / "c1",
            3,
            8,
            3,
            nn::ConvConfig {
                padding: 1,
                ..Default::default()
            },
        ))
        .add_fn(|x| x.relu())
        .add(nn::conv2d(
            &root / "c2",
            8,
            8,
            3,
            nn::ConvConfig {
                padding: 1,
                stride: 2,
                ..Default::default()
            },
        ))
        .add_fn(|x| x.relu().adaptive_avg_pool2d([1, 1]).flatten(1, -1))
        .add(nn::linear(&root / "fc", 8, 4, Default::default()));
    let x = Tensor::randn([16, 3, 8, 8], (Kind::Float, device));
    let y = Tensor::randint(4, [16], (Kind::Int64, device));
    let mut opt = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&vs, 0.1)?;
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let loss = net.forward(&x).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
        losses.push(loss.double_value(&[]));
    }
    Ok(SmokeReport {
        device: format!("{device:?}"),
        libtorch_cuda: tch::Cuda::is_available(),
        first_loss: losses.first().copied().unwrap_or(f64::NAN),
        last_loss: losses.last().copied().unwrap_or(f64::NAN),
        steps,
    })
}

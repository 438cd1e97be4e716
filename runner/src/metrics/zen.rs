//! `zen`: Zen-score. With Gaussian init (conv/linear weights N(0, 1), BN 1 and 0) and BN in
//! training mode, a standard-normal batch `x` (64 images) and `x' = x + 0.01 * eps`:
//! `zen = log( mean_n sum_{c,h,w} |f(x) - f(x')| ) + sum over BN layers of log sqrt(mean_c var_c)`
//! where `f` is the feature map before global pooling and `var_c` the BN layers' batch variances
//! in the pass on `x`, every op executed (`Forward::all_ops`: BN layers of dead branches count,
//! as in eager PyTorch). Data-free (only the input shape is used); averaged over `repeats`
//! (option, default 1) draws, seeds `seed, seed+1, ...`.
//!
//! Source: Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Deep Image Recognition"
//! (ICCV 2021), `ZeroShotProxy/compute_zen_score.py`. Known issue: the reference reads BN
//! `running_var` after its forward passes, which with momentum 0.1 is mostly the initial 1,
//! not the batch variance σ² the paper's formula uses; we follow the paper and use the batch
//! variances of the pass on `x` (`Forward::bn_batch_vars`). A BN whose input is exactly zero
//! (NB201: a conv fed by a node that only `none` edges reach) has variance 0 and adds exactly
//! nothing to `f`; with batch variances its log term would be -inf for a quarter of NB201, so it
//! is left out of the sum (the reference code's running_var never reaches 0).
use tch::{no_grad, Device, Kind, Tensor};

use super::common::{fresh_net_seeded, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "zen",
    needs: Needs {
        data: false,
        labels: false,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 64,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "Zen-score: log expected feature-map perturbation + BN variance terms (Zen-NAS)",
    options: &["repeats"],
    compute,
};

const MIXUP_GAMMA: f64 = 1e-2;

fn compute(
    builder: &dyn NetBuilder,
    _batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let n = ctx.batch_size_for(&SPEC) as i64;
    let repeats = ctx.option("repeats", 1.0);
    if repeats.is_nan() || repeats < 1.0 || repeats.fract() != 0.0 {
        return Err(MetricError::invalid(
            SPEC.name,
            "option repeats must be a positive integer",
        ));
    }
    if n < 2 {
        return Err(MetricError::invalid(
            SPEC.name,
            "batch size must be at least 2",
        ));
    }
    let (c, h, w) = builder.input_shape();
    let mut total = 0.0;
    for r in 0..repeats as u64 {
        let seed = ctx.seed.wrapping_add(r);
        let (_vs, net) = fresh_net_seeded(builder, seed, ctx.device, Init::Gaussian, Kind::Float);
        let value = no_grad(|| -> Result<f64, MetricError> {
            let x = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)).to_device(ctx.device);
            let eps = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)).to_device(ctx.device);
            super::dump::record_zen(&x, &eps);
            let mut f = Forward {
                train: true,
                all_ops: true,
                bn_batch_vars: Some(Vec::new()),
                ..Default::default()
            };
            let _ = net.forward(&x, &mut f);
            let fx = f.features.take();
            let vars = f.bn_batch_vars.take().unwrap_or_default();
            let mut g = Forward {
                train: true,
                all_ops: true,
                ..Default::default()
            };
            let _ = net.forward(&(&x + eps * MIXUP_GAMMA), &mut g);
            let (fx, fy) = match (fx, g.features.take()) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    return Err(MetricError::invalid(
                        SPEC.name,
                        "the network does not set Forward::features (pre-pooling map)",
                    ))
                }
            };
            Ok(zen_value(&fx, &fy, &vars))
        })?;
        total += value;
    }
    Ok(MetricValue::Scalar(total / repeats))
}

/// `log(mean_n sum |a - b|) + sum_l log sqrt(mean var_l)`.
pub fn zen_value(fx: &Tensor, fy: &Tensor, bn_vars: &[Tensor]) -> f64 {
    let n = fx.size()[0];
    let delta =
        (fx - fy)
            .abs()
            .reshape([n, -1])
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
    let mut score = delta.mean(Kind::Double).log();
    for v in bn_vars {
        let mean = v.to_kind(Kind::Double).mean(Kind::Double);
        // A BN of an all-zero input scales nothing (see the module doc).
        if mean.double_value(&[]) > 0.0 {
            score += mean.sqrt().log();
        }
    }
    score.double_value(&[])
}

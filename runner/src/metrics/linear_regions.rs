//! `linear_regions`: the number of distinct ReLU activation patterns (one binary code per image
//! over all ReLU units, `x > 0`) among a batch of images: `sum_i 1 / #{j : code_j == code_i}`,
//! computed as TE-NAS does from Hamming distances `A (1 - A)^T + (1 - A) A^T`. Training mode,
//! Kaiming-normal fan-in init, no gradients. Higher is better.
//!
//! Source: Chen et al., TE-NAS (ICLR 2021), `lib/procedures/linear_region_counter.py`
//! (`Linear_Region_Collector`). Deviation, stated: TE-NAS counts on a *thin* copy of the
//! candidate (1 channel, 1 cell per stage) fed 1000 tiny 3x3 inputs, averaged over 3 batches;
//! the `NetBuilder` interface cannot shrink a network, so this module counts on the candidate
//! as built, with the batch images average-pooled to `input_size` x `input_size` (option,
//! default 3) and the metric's batch (default 100 images). At full width most images get their
//! own pattern, so the count saturates near the batch size; treat this baseline with care.
use tch::{no_grad, Kind, Tensor};

use super::common::{fresh_net, metric_batch, Init};
use super::{make_needs, MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "linear_regions",
    needs: make_needs(true, false, false),
    higher_is_better: true,
    default_batch_size: 100,
    summary: "distinct ReLU activation patterns in a batch (TE-NAS, full-width network)",
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let b = metric_batch(batch, ctx, &SPEC)?;
    let side = ctx.option("input_size", 3.0);
    if side.is_nan() || side < 1.0 || side.fract() != 0.0 {
        return Err(MetricError::invalid(
            SPEC.name,
            "option input_size must be a positive integer",
        ));
    }
    let side = side as i64;
    let (_vs, net) = fresh_net(builder, ctx, Init::KaimingNormalFanIn, Kind::Float);
    let relus = no_grad(|| {
        let x = b.images.adaptive_avg_pool2d([side, side]);
        let mut f = Forward {
            train: true,
            all_ops: true,
            relu_inputs: Some(Vec::new()),
            ..Default::default()
        };
        let _ = net.forward(&x, &mut f);
        f.relu_inputs.take().unwrap_or_default()
    });
    if relus.is_empty() {
        return Err(MetricError::invalid(
            SPEC.name,
            "the network recorded no ReLU inputs (Forward::relu_inputs)",
        ));
    }
    Ok(MetricValue::Number(count_patterns(&relus)))
}

/// Distinct activation patterns among the images, from every ReLU's input `[N, ...]`.
pub fn count_patterns(relu_inputs: &[Tensor]) -> f64 {
    no_grad(|| {
        let n = relu_inputs[0].size()[0];
        let codes: Vec<Tensor> = relu_inputs
            .iter()
            .map(|r| r.reshape([n, -1]).gt(0.0).to_kind(Kind::Float))
            .collect();
        let a = Tensor::cat(&codes, 1);
        let mismatch = a.matmul(&(a.ones_like() - &a).tr());
        let hamming = &mismatch + mismatch.tr();
        let same = hamming.eq(0.0).to_kind(Kind::Double);
        same.sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
            .reciprocal()
            .sum(Kind::Double)
            .double_value(&[])
    })
}

//! `grasp`: gradient signal preservation, `sum -w * (H g)` over conv and linear weights, where
//! `g` is the gradient of the cross-entropy loss (first pass, treated as a constant) and `H g`
//! the Hessian-gradient product obtained by differentiating `g_const . dL/dw` (second pass
//! with a graph); one batch of 64 in training mode, temperature 1, PyTorch default init.
//!
//! Source: Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient Flow"
//! (ICLR 2020), as used by Abdelfattah et al. (ICLR 2021), `foresight/pruners/measures/grasp.py`.
use tch::{Kind, Tensor};

use super::common::{check_labels, fresh_net, layer_weights, metric_batch, sum_scalars, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "grasp",
    needs: Needs {
        data: true,
        labels: true,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 64,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "sum -w * Hg over conv/linear weights (GraSP, zero-cost proxies)",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let err = MetricError::torch(SPEC.name);
    let b = metric_batch(batch, ctx, &SPEC)?;
    check_labels(&b, builder, SPEC.name)?;
    let (vs, net) = fresh_net(builder, ctx, Init::PytorchDefault, Kind::Float);
    let weights: Vec<Tensor> = layer_weights(&vs).into_iter().map(|(_, w)| w).collect();

    // First pass: g, a constant. Weights no path reaches (pruned ops) get no gradient.
    let loss = net
        .forward(&b.images, &mut Forward::train())
        .cross_entropy_for_logits(&b.labels);
    let grads = Tensor::f_run_backward(&[&loss], &weights, false, false).map_err(err)?;
    let (used, g_const): (Vec<Tensor>, Vec<Tensor>) = weights
        .iter()
        .zip(grads)
        .filter(|(_, g)| g.defined())
        .map(|(w, g)| (w.shallow_clone(), g.detach()))
        .unzip();
    if used.is_empty() {
        return Ok(MetricValue::Scalar(0.0));
    }

    // Second pass: z = sum g_const . dL/dw with a graph, then dz/dw = H g.
    let loss = net
        .forward(&b.images, &mut Forward::train())
        .cross_entropy_for_logits(&b.labels);
    let grad_f = Tensor::f_run_backward(&[&loss], &used, true, true)
        .map_err(MetricError::torch(SPEC.name))?;
    let z_parts: Vec<Tensor> = g_const
        .iter()
        .zip(&grad_f)
        .filter(|(_, f)| f.defined())
        .map(|(g, f)| (g * f).sum(Kind::Float))
        .collect();
    let z = Tensor::stack(&z_parts, 0).sum(Kind::Float);
    let hg = Tensor::f_run_backward(&[&z], &used, false, false)
        .map_err(MetricError::torch(SPEC.name))?;
    let parts: Vec<Tensor> = used
        .iter()
        .zip(hg)
        .filter(|(_, h)| h.defined())
        .map(|(w, h)| (-(w.detach() * h)).sum(Kind::Float))
        .collect();
    Ok(MetricValue::Scalar(sum_scalars(parts)))
}

//! `grad_norm`: the sum over conv and linear layers of the L2 norm of the gradient of the
//! cross-entropy loss with respect to the layer's weight, after one forward/backward pass of a
//! batch of 64 in training mode (BatchNorm on batch statistics), PyTorch default init.
//!
//! Source: Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021), code
//! `foresight/pruners/measures/grad_norm.py` (per-layer `weight.grad.norm()`, summed).
use tch::{Kind, Tensor};

use super::common::{check_labels, fresh_net, layer_weights, metric_batch, sum_scalars, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "grad_norm",
    needs: Needs {
        data: true,
        labels: true,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 64,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "sum of per-layer L2 norms of the CE-loss weight gradients (zero-cost proxies)",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let b = metric_batch(batch, ctx, &SPEC)?;
    check_labels(&b, builder, SPEC.name)?;
    let (vs, net) = fresh_net(builder, ctx, Init::PytorchDefault, Kind::Float);
    let logits = net.forward(&b.images, &mut Forward::train());
    let loss = logits.cross_entropy_for_logits(&b.labels);
    loss.f_backward().map_err(MetricError::torch(SPEC.name))?;
    let norms: Vec<Tensor> = layer_weights(&vs)
        .into_iter()
        .map(|(_, w)| w.grad())
        .filter(Tensor::defined)
        .map(|g| g.norm())
        .collect();
    Ok(MetricValue::Scalar(sum_scalars(norms)))
}

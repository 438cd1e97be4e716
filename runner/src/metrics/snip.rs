//! `snip`: connection sensitivity summed over conv and linear weights,
//! `sum |w * dL/dw|`, for the cross-entropy loss of one batch of 64 in training mode, PyTorch
//! default init. The reference multiplies each weight by a mask of ones and reads the mask's
//! gradient, which equals `w * dL/dw`; we compute that product directly.
//!
//! Source: Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity"
//! (ICLR 2019), as used by Abdelfattah et al. (ICLR 2021), `foresight/pruners/measures/snip.py`.
use tch::{Kind, Tensor};

use super::common::{check_labels, fresh_net, layer_weights, metric_batch, sum_scalars, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "snip",
    needs: Needs {
        data: true,
        labels: true,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 64,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "sum |w * dL/dw| over conv/linear weights (SNIP, zero-cost proxies)",
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
    let parts: Vec<Tensor> = layer_weights(&vs)
        .into_iter()
        .filter_map(|(_, w)| {
            let g = w.grad();
            g.defined().then(|| (w.detach() * g).abs().sum(Kind::Float))
        })
        .collect();
    Ok(MetricValue::Scalar(sum_scalars(parts)))
}

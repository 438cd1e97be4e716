//! `fisher`: the Fisher-information channel saliency summed over every conv and linear layer
//! output `a` (before BatchNorm): per layer, `g_nk = sum over space of a * dL/da` for sample n
//! and channel k, then `0.5 * mean_n g_nk^2` summed over channels. Cross-entropy of one batch
//! of 64 in training mode, PyTorch default init.
//!
//! Source: Theis et al., "Faster gaze prediction with dense networks and Fisher pruning" (2018),
//! as used by Abdelfattah et al. (ICLR 2021), `foresight/pruners/measures/fisher.py` (which
//! reads `a` and `dL/da` through an identity module after each layer; we read the layer
//! outputs from `Forward::layer_outputs`).
use tch::{Kind, Tensor};

use super::common::{check_labels, fresh_net, metric_batch, sum_scalars, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "fisher",
    needs: Needs {
        data: true,
        labels: true,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 64,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "Fisher channel saliency of conv/linear outputs (zero-cost proxies)",
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
    let (_vs, net) = fresh_net(builder, ctx, Init::PytorchDefault, Kind::Float);
    let mut f = Forward {
        train: true,
        layer_outputs: Some(Vec::new()),
        ..Default::default()
    };
    let loss = net
        .forward(&b.images, &mut f)
        .cross_entropy_for_logits(&b.labels);
    let acts = f.layer_outputs.take().unwrap_or_default();
    let acts: Vec<Tensor> = acts.into_iter().filter(|a| a.requires_grad()).collect();
    if acts.is_empty() {
        return Err(MetricError::invalid(
            SPEC.name,
            "the network recorded no conv/linear outputs (Forward::layer_outputs)",
        ));
    }
    let grads = Tensor::f_run_backward(&[&loss], &acts, false, false)
        .map_err(MetricError::torch(SPEC.name))?;
    let parts: Vec<Tensor> = acts
        .iter()
        .zip(grads)
        .filter(|(_, g)| g.defined())
        .map(|(a, g)| fisher_of_layer(&a.detach(), &g))
        .collect();
    Ok(MetricValue::Scalar(sum_scalars(parts)))
}

/// `sum_k 0.5 * mean_n (sum_space a * g)_nk^2` for one layer output `a` and its gradient `g`.
pub fn fisher_of_layer(a: &Tensor, g: &Tensor) -> Tensor {
    let prod = a * g;
    let g_nk = if prod.dim() > 2 {
        let dims: Vec<i64> = (2..prod.dim() as i64).collect();
        prod.sum_dim_intlist(dims.as_slice(), false, Kind::Float)
    } else {
        prod
    };
    (g_nk
        .square()
        .mean_dim([0i64].as_slice(), false, Kind::Float)
        * 0.5)
        .sum(Kind::Float)
}

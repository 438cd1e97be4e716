//! `synflow`: synaptic flow. All parameters are replaced by their absolute values, BatchNorm is
//! removed, the network runs in float64 on one all-ones input image, `R` is the sum of the
//! logits, and `score = sum |w * dR/dw|` over conv and linear weights (biases are made positive
//! but not scored, as in the reference). Data-independent: only the input's shape is used.
//! PyTorch default init.
//!
//! Source: Tanaka et al., "Pruning neural networks without any data by iteratively conserving
//! synaptic flow" (NeurIPS 2020), as used by Abdelfattah et al. (ICLR 2021),
//! `foresight/pruners/measures/synflow.py` (`net.double()`, `bn=False` copy, ones input).
use tch::{nn::VarStore, no_grad, Device, Kind, Tensor};

use super::common::{fresh_net, layer_weights, sum_scalars, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, Net, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "synflow",
    needs: Needs {
        data: false,
        labels: false,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 0,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "sum |w * dR/dw|, |weights|, no BN, float64, ones input (SynFlow)",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    _batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let (vs, net) = fresh_net(builder, ctx, Init::PytorchDefault, Kind::Double);
    linearize(&vs);
    score(&vs, net.as_ref(), builder.input_shape(), ctx.device)
}

/// Replaces every variable of `vs` by its absolute value (the reference's `linearize`).
pub fn linearize(vs: &VarStore) {
    no_grad(|| {
        for (_, mut t) in vs.variables() {
            let _ = t.abs_();
        }
    });
}

/// Synflow of an already linearised float64 network: one all-ones image, BN skipped.
pub fn score(
    vs: &VarStore,
    net: &dyn Net,
    input: (i64, i64, i64),
    device: Device,
) -> Result<MetricValue, MetricError> {
    let (c, h, w) = input;
    let x = Tensor::ones([1, c, h, w], (Kind::Double, device));
    let mut f = Forward {
        no_bn: true,
        ..Default::default()
    };
    let r = net.forward(&x, &mut f).sum(Kind::Double);
    r.f_backward().map_err(MetricError::torch(SPEC.name))?;
    let parts: Vec<Tensor> = layer_weights(vs)
        .into_iter()
        .filter_map(|(_, w)| {
            let g = w.grad();
            g.defined()
                .then(|| (w.detach() * g).abs().sum(Kind::Double))
        })
        .collect();
    Ok(MetricValue::Scalar(sum_scalars(parts)))
}

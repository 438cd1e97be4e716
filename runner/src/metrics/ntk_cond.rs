//! `ntk_cond`: the condition number of the empirical neural tangent kernel. For each image of
//! one batch of 64 (training mode, Kaiming-normal fan-in init), the gradient of the sum of its
//! logits with respect to every parameter whose name contains `weight` (conv, linear and
//! BatchNorm weights) is flattened into one row; `Theta = J J^T`; the score is
//! `lambda_max / lambda_min` of `Theta`, NaN replaced by 100000. Lower is better.
//! Gradients are float32 as in the reference; `Theta` and its eigenvalues are float64: TE-NAS
//! forms and decomposes `Theta` in float32, whose error (~1e-7 lambda_max) is ~1% of lambda_min
//! at the condition numbers NB201 networks reach (~1e5), so its last digits are rounding noise
//! (measured: float32 `Theta` put our value and the PyTorch reference's 3e-4 apart on the same
//! weights and batch; float64 agrees within 1e-4). The value the paper means, less the noise.
//!
//! Source: Chen et al., "Neural Architecture Search on ImageNet in Four GPU Hours: A
//! Theoretically Inspired Perspective" (TE-NAS, ICLR 2021), `lib/procedures/ntk.py`
//! (`get_ntk_n`). BatchNorm couples the images of the batch, so these are the reference's
//! "per-sample" gradients, not independent ones.
use tch::{Kind, Tensor};

use super::common::{all_weights, fresh_net, metric_batch, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "ntk_cond",
    needs: Needs {
        data: true,
        labels: false,
        training: false,
    },
    higher_is_better: false,
    default_batch_size: 64,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "condition number of the empirical NTK (TE-NAS); lower is better",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let b = metric_batch(batch, ctx, &SPEC)?;
    let (vs, net) = fresh_net(builder, ctx, Init::KaimingNormalFanIn, Kind::Float);
    let weights: Vec<Tensor> = all_weights(&vs).into_iter().map(|(_, w)| w).collect();
    let logits = net.forward(&b.images, &mut Forward::train());
    let n = b.len() as i64;
    let mut rows = Vec::with_capacity(n as usize);
    for i in 0..n {
        let out = logits.narrow(0, i, 1);
        let grads = Tensor::f_run_backward(&[&out], &weights, true, false)
            .map_err(MetricError::torch(SPEC.name))?;
        let flat: Vec<Tensor> = grads
            .into_iter()
            .filter(Tensor::defined)
            .map(|g| g.reshape([-1]))
            .collect();
        if flat.is_empty() {
            return Err(MetricError::invalid(
                SPEC.name,
                "no weight receives a gradient",
            ));
        }
        rows.push(Tensor::cat(&flat, 0));
    }
    let j = Tensor::stack(&rows, 0).to_kind(Kind::Double);
    Ok(MetricValue::Scalar(condition_number(&j.matmul(&j.tr()))))
}

/// `lambda_max / lambda_min` of a symmetric matrix; NaN (or a failed eigensolver) -> 100000.
pub fn condition_number(gram: &Tensor) -> f64 {
    let cond = match gram.to_kind(Kind::Double).f_linalg_eigvalsh("L") {
        Ok(e) => {
            let n = e.size()[0];
            (e.get(n - 1) / e.get(0)).double_value(&[])
        }
        Err(_) => f64::NAN,
    };
    if cond.is_nan() {
        100000.0
    } else {
        cond
    }
}

//! `jacob_cov`: for one batch of 64 in training mode (PyTorch default init), the Jacobian of
//! the summed logits with respect to each input image, flattened to one row per image; with
//! `C` the correlation matrix of those rows (in float64) and `v` its eigenvalues,
//! `score = -sum(log(v + k) + 1 / (v + k))`, `k = 1e-5`. Undefined correlations (a constant
//! row) give NaN, as the reference's `try`/`except` does.
//!
//! Source: Mellor et al., "Neural Architecture Search without Training", arXiv:2006.04647v1,
//! as used by Abdelfattah et al. (ICLR 2021), `foresight/pruners/measures/jacob_cov.py`.
use tch::{Kind, Tensor};

use super::common::{fresh_net, metric_batch, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "jacob_cov",
    needs: Needs {
        data: true,
        labels: false,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 64,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "eigenvalue score of the input-Jacobian correlation matrix (NASWOT v1)",
    options: &[],
    compute,
};

const K: f64 = 1e-5;

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let b = metric_batch(batch, ctx, &SPEC)?;
    let (_vs, net) = fresh_net(builder, ctx, Init::PytorchDefault, Kind::Float);
    let x = b.images.detach().set_requires_grad(true);
    let y = net.forward(&x, &mut Forward::train());
    // Backward of y with a gradient of ones: the Jacobian of the summed logits.
    let jac = Tensor::f_run_backward(&[&y], &[&x], false, false)
        .map_err(MetricError::torch(SPEC.name))?
        .remove(0);
    // An output that does not depend on the input (a cell whose output node is fed only
    // through `none`) leaves the gradient undefined: every Jacobian row is zero, a constant row.
    if !jac.defined() {
        return Ok(MetricValue::Scalar(f64::NAN));
    }
    let n = b.len() as i64;
    Ok(MetricValue::Scalar(score_of_jacobian(
        &jac.reshape([n, -1]),
    )))
}

/// The reference's `eval_score` on a `[N, D]` Jacobian.
pub fn score_of_jacobian(jac: &Tensor) -> f64 {
    let corr = jac.to_kind(Kind::Double).corrcoef();
    if corr.isnan().any().int64_value(&[]) != 0 {
        return f64::NAN;
    }
    match corr.f_linalg_eigvalsh("L") {
        Ok(v) => {
            let v = v + K;
            -(v.log() + v.reciprocal())
                .sum(Kind::Double)
                .double_value(&[])
        }
        Err(_) => f64::NAN,
    }
}

//! `naswot`: every ReLU's input is turned into a binary code per image (`x > 0`), flattened;
//! summed over all ReLUs, `K = C C^T + (1 - C)(1 - C)^T` counts, for each pair of images, the
//! ReLU units on which they agree; `score = log |det K|`. One batch of 128 in training mode,
//! PyTorch default init, no gradients. `K` is accumulated in float64 (its entries are counts,
//! so this is exact; the reference accumulates float32 counts, also exact at NB201 sizes).
//! Every op runs (`Forward::all_ops`), even where the network is built pruned: the reference
//! hooks every ReLU eager PyTorch executes, dead branches of the cell included.
//!
//! Source: Mellor et al., "Neural Architecture Search without Training" (ICML 2021), code
//! `score_networks.py` / `hook_logdet` in BayesWatch/nas-without-training.
use tch::{no_grad, Kind, Tensor};

use super::common::{fresh_net, metric_batch, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "naswot",
    needs: Needs {
        data: true,
        labels: false,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 128,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "log|det K| of the ReLU-code agreement kernel (NASWOT)",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let b = metric_batch(batch, ctx, &SPEC)?;
    let (_vs, net) = fresh_net(builder, ctx, Init::PytorchDefault, Kind::Float);
    let relus = no_grad(|| {
        let mut f = Forward {
            train: true,
            all_ops: true,
            relu_inputs: Some(Vec::new()),
            ..Default::default()
        };
        let _ = net.forward(&b.images, &mut f);
        f.relu_inputs.take().unwrap_or_default()
    });
    if relus.is_empty() {
        return Err(MetricError::invalid(
            SPEC.name,
            "the network recorded no ReLU inputs (Forward::relu_inputs)",
        ));
    }
    let k = kernel(&relus);
    Ok(MetricValue::Scalar(log_abs_det(&k)))
}

/// `K = sum over ReLUs of C C^T + (1 - C)(1 - C)^T`, float64 `[N, N]`.
pub fn kernel(relu_inputs: &[Tensor]) -> Tensor {
    no_grad(|| {
        let mut k: Option<Tensor> = None;
        for r in relu_inputs {
            let n = r.size()[0];
            // 0/1 codes in float32: products and sums of at most 2^24 units stay exact.
            let c = r.reshape([n, -1]).gt(0.0).to_kind(Kind::Float);
            let nc = c.ones_like() - &c;
            let part = (c.matmul(&c.tr()) + nc.matmul(&nc.tr())).to_kind(Kind::Double);
            k = Some(match k {
                Some(acc) => acc + part,
                None => part,
            });
        }
        k.unwrap_or_else(|| Tensor::zeros([0, 0], (Kind::Double, tch::Device::Cpu)))
    })
}

/// `log |det K|` (NaN for an empty kernel; -inf for a singular one, as `slogdet` gives).
pub fn log_abs_det(k: &Tensor) -> f64 {
    if k.numel() == 0 {
        return f64::NAN;
    }
    match Tensor::f_linalg_slogdet(k) {
        Ok((_sign, logabsdet)) => logabsdet.double_value(&[]),
        Err(_) => f64::NAN,
    }
}

//! What the metrics share: building a fresh, seeded network with the initialisation a
//! reference uses, and picking out the conv and linear weights the references score.
//!
//! Initialisation walks the variables in name order so the same seed gives the same weights on
//! every run (a `HashMap` walk would not), on the CPU so every device gets the same weights; the
//! store is then moved to the metric's device.
use tch::{nn::VarStore, no_grad, Device, Kind, Tensor};

use super::{MetricBatch, MetricContext, MetricError};
use crate::nn::{Net, NetBuilder};

/// Weight initialisations the reference codes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// PyTorch's module defaults (zero-cost proxies, NASWOT): conv/linear weights and biases
    /// uniform in ±1/sqrt(fan_in) (kaiming_uniform with a = sqrt 5); BatchNorm 1 and 0.
    PytorchDefault,
    /// Kaiming normal, fan-in, gain sqrt 2 (the paper's metric, TE-NAS); biases 0; BN 1 and 0.
    KaimingNormalFanIn,
    /// Standard normal conv/linear weights, biases 0, BN 1 and 0 (Zen-NAS).
    Gaussian,
}

/// Re-initialises every conv/linear weight (a `weight` of 2+ dims), every bias and every
/// BatchNorm affine parameter of `vs` in name order, drawing from libtorch's generator.
pub fn init_var_store(vs: &VarStore, init: Init) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    no_grad(|| {
        for name in names {
            let mut t = vars[name].shallow_clone();
            let (prefix, leaf) = match name.rsplit_once('.') {
                Some((p, l)) => (p, l),
                None => ("", name.as_str()),
            };
            match leaf {
                "weight" if t.dim() >= 2 => {
                    let size = t.size();
                    let fan_in: i64 = size[1..].iter().product();
                    let fresh = match init {
                        Init::PytorchDefault => {
                            let b = 1.0 / (fan_in as f64).sqrt();
                            Tensor::rand(size.as_slice(), (t.kind(), t.device())) * (2.0 * b) - b
                        }
                        Init::KaimingNormalFanIn => {
                            Tensor::randn(size.as_slice(), (t.kind(), t.device()))
                                * (2.0 / fan_in as f64).sqrt()
                        }
                        Init::Gaussian => Tensor::randn(size.as_slice(), (t.kind(), t.device())),
                    };
                    t.copy_(&fresh);
                }
                "weight" => {
                    let _ = t.fill_(1.0);
                }
                "bias" => {
                    let sibling = if prefix.is_empty() {
                        "weight".to_string()
                    } else {
                        format!("{prefix}.weight")
                    };
                    let layer_fan_in = vars
                        .get(&sibling)
                        .filter(|w| w.dim() >= 2)
                        .map(|w| w.size()[1..].iter().product::<i64>());
                    match (init, layer_fan_in) {
                        (Init::PytorchDefault, Some(fan_in)) => {
                            let b = 1.0 / (fan_in as f64).sqrt();
                            let fresh = Tensor::rand(t.size().as_slice(), (t.kind(), t.device()))
                                * (2.0 * b)
                                - b;
                            t.copy_(&fresh);
                        }
                        _ => {
                            let _ = t.zero_();
                        }
                    }
                }
                _ => {}
            }
        }
    });
}

/// A fresh network for one metric: seeded with `ctx.seed`, built and initialised on the CPU,
/// cast to `kind`, moved to `ctx.device`.
pub fn fresh_net(
    builder: &dyn NetBuilder,
    ctx: &MetricContext,
    init: Init,
    kind: Kind,
) -> (VarStore, Box<dyn Net>) {
    fresh_net_seeded(builder, ctx.seed, ctx.device, init, kind)
}

/// [`fresh_net`] with an explicit seed (repeats over seeds).
pub fn fresh_net_seeded(
    builder: &dyn NetBuilder,
    seed: u64,
    device: Device,
    init: Init,
    kind: Kind,
) -> (VarStore, Box<dyn Net>) {
    tch::manual_seed(seed as i64);
    let mut vs = VarStore::new(Device::Cpu);
    let net = builder.build(&vs.root());
    init_var_store(&vs, init);
    super::dump::record_weights(&vs);
    if kind == Kind::Double {
        vs.double();
    }
    if device != Device::Cpu {
        vs.set_device(device);
    }
    crate::nn::use_channels_last(&vs, device);
    (vs, net)
}

/// The conv and linear weights (`weight` variables of 2+ dims), in name order: the layers the
/// zero-cost proxies score.
pub fn layer_weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, t)| n.rsplit('.').next() == Some("weight") && t.dim() >= 2)
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Every trainable variable whose name contains `weight` (TE-NAS's NTK selection), name order.
pub fn all_weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, t)| n.contains("weight") && t.requires_grad())
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The metric's batch: `take_balanced` of its batch size (override or default).
pub fn metric_batch(
    batch: &MetricBatch,
    ctx: &MetricContext,
    spec: &super::MetricSpec,
) -> Result<MetricBatch, MetricError> {
    let n = ctx.batch_size_for(spec);
    if n == 0 {
        return Err(MetricError::invalid(
            spec.name,
            "batch size must be at least 1",
        ));
    }
    let b = batch.take_balanced(n, spec.name)?;
    super::dump::record_batch(&b);
    Ok(b)
}

/// Checks that labels fit the network's classes (cross-entropy would abort inside libtorch).
pub fn check_labels(
    batch: &MetricBatch,
    builder: &dyn NetBuilder,
    metric: &'static str,
) -> Result<(), MetricError> {
    if batch.is_empty() {
        return Err(MetricError::invalid(metric, "empty batch"));
    }
    let max = batch.labels.max().int64_value(&[]);
    let min = batch.labels.min().int64_value(&[]);
    let classes = builder.num_classes();
    if min < 0 || max >= classes {
        return Err(MetricError::invalid(
            metric,
            format!("labels span {min}..={max} but the network has {classes} classes"),
        ));
    }
    Ok(())
}

/// Sum of a scalar tensor list as f64 (one device sync).
pub fn sum_scalars(parts: Vec<Tensor>) -> f64 {
    if parts.is_empty() {
        return 0.0;
    }
    Tensor::stack(&parts, 0)
        .to_kind(Kind::Double)
        .sum(Kind::Double)
        .double_value(&[])
}

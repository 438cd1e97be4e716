//! Architecture metrics: one module per metric behind one registry, plus rank utilities.
//!
//! Every metric is a [`MetricSpec`]: its name, what it needs (data, labels, training), its
//! direction (higher is better?), its default batch size, and a `compute` function from a
//! network builder, a [`MetricBatch`] and a [`MetricContext`] (seed, device, options) to a
//! [`MetricValue`]. Each metric builds its own fresh network from the builder with the
//! initialisation its reference code uses, so metrics never disturb one another.
//!
//! Determinism: metrics seed libtorch's global generator (`tch::manual_seed`) before building
//! and initialising; compute one metric at a time per process (the `score` command does).

pub mod angle_loss;
pub mod batch;
pub mod common;
pub mod dump;
pub mod fisher;
pub mod flops;
pub mod fusion;
pub mod grad_norm;
pub mod grasp;
pub mod jacob_cov;
pub mod linear_regions;
pub mod naswot;
pub mod ntk_cond;
pub mod params;
pub mod rank;
pub mod scoring;
pub mod snip;
pub mod synflow;
pub mod testing;
pub mod zen;

use std::collections::BTreeMap;

use serde::Serialize;
use tch::Device;
use thiserror::Error;

pub use batch::MetricBatch;
/// Values are the record types of the artifacts: what a metric computes is what is stored.
pub use nas_api::records::{AngleLoss, MetricValue};

use crate::nn::NetBuilder;

/// Why a metric could not be computed.
#[derive(Debug, Error)]
pub enum MetricError {
    #[error("unknown metric '{name}': valid metrics are {valid}")]
    Unknown { name: String, valid: String },
    #[error("metric {metric}: {message}")]
    Invalid {
        metric: &'static str,
        message: String,
    },
    #[error("metric {metric}: libtorch: {source}")]
    Torch {
        metric: &'static str,
        #[source]
        source: tch::TchError,
    },
}

impl MetricError {
    pub(crate) fn invalid(metric: &'static str, message: impl Into<String>) -> Self {
        MetricError::Invalid {
            metric,
            message: message.into(),
        }
    }
    pub(crate) fn torch(metric: &'static str) -> impl FnOnce(tch::TchError) -> Self {
        move |source| MetricError::Torch { metric, source }
    }
}

/// What a metric needs from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// Images (real or synthetic) in the batch.
    pub data: bool,
    /// Labels (a loss over classes).
    pub labels: bool,
    /// A short training run.
    pub training: bool,
}

/// The kind of value a metric computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ValueKind {
    /// [`MetricValue::Scalar`]: candidates are ranked by the number.
    Scalar,
    /// [`MetricValue::AngleLoss`]: the ranks of `cos` and `-loss` are fused
    /// ([`fusion::metric_rank`]).
    AngleLoss,
}

/// How every metric is called.
pub type ComputeFn =
    fn(&dyn NetBuilder, &MetricBatch, &MetricContext) -> Result<MetricValue, MetricError>;

/// One registered metric.
#[derive(Clone, Copy)]
pub struct MetricSpec {
    pub name: &'static str,
    pub needs: Needs,
    /// True when a larger value predicts a better architecture.
    pub higher_is_better: bool,
    /// Images per batch as the reference uses (0: the metric reads no data).
    pub default_batch_size: usize,
    /// What it computes: a number, or a value whose parts are ranked and fused across
    /// candidates.
    pub value: ValueKind,
    /// A fixed sample of this many images per class instead of `default_batch_size` images
    /// (the paper's sample for `angle_loss`); a caller's explicit batch size may override it.
    pub per_class: Option<usize>,
    /// One line: what it computes and where the definition comes from.
    pub summary: &'static str,
    /// The `MetricContext::options` it reads (`--option NAME=VALUE`); any other is an error.
    pub options: &'static [&'static str],
    pub compute: ComputeFn,
}

impl std::fmt::Debug for MetricSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricSpec")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .field("higher_is_better", &self.higher_is_better)
            .field("default_batch_size", &self.default_batch_size)
            .field("value", &self.value)
            .field("per_class", &self.per_class)
            .finish()
    }
}

/// Seed, device and per-metric options (numbers by name, e.g. `repeats`).
#[derive(Debug, Clone)]
pub struct MetricContext {
    pub seed: u64,
    pub device: Device,
    /// Overrides every metric's default batch size when set.
    pub batch_size: Option<usize>,
    pub options: BTreeMap<String, f64>,
}

impl MetricContext {
    pub fn new(seed: u64, device: Device) -> Self {
        MetricContext {
            seed,
            device,
            batch_size: None,
            options: BTreeMap::new(),
        }
    }
    /// Option `name`, or `default` when unset.
    pub fn option(&self, name: &str, default: f64) -> f64 {
        self.options.get(name).copied().unwrap_or(default)
    }
    /// The batch size a metric uses: the override or its default.
    pub fn batch_size_for(&self, spec: &MetricSpec) -> usize {
        self.batch_size.unwrap_or(spec.default_batch_size)
    }
    /// Images per class of the sample `spec` reads over `classes` classes: its fixed per-class
    /// sample, else its batch size spread over the classes.
    pub fn per_class_for(&self, spec: &MetricSpec, classes: usize) -> usize {
        spec.per_class
            .unwrap_or_else(|| self.batch_size_for(spec).max(1).div_ceil(classes.max(1)))
    }
}

/// One entry per API metric (`nas_api::spec::Metric::ALL`), in the documented order.
static REGISTRY: [MetricSpec; nas_api::spec::Metric::ALL.len()] = [
    params::SPEC,
    flops::SPEC,
    grad_norm::SPEC,
    snip::SPEC,
    grasp::SPEC,
    fisher::SPEC,
    jacob_cov::SPEC,
    synflow::SPEC,
    naswot::SPEC,
    ntk_cond::SPEC,
    linear_regions::SPEC,
    zen::SPEC,
    angle_loss::SPEC,
];

/// Every metric, in the documented order.
pub fn registry() -> &'static [MetricSpec] {
    &REGISTRY
}

/// The metric called `name`; the error lists the valid names.
pub fn lookup(name: &str) -> Result<&'static MetricSpec, MetricError> {
    registry()
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| MetricError::Unknown {
            name: name.to_string(),
            valid: registry()
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Checks that every option in `options` is one some metric reads (a misspelling is an error,
/// not a silently ignored setting); the error names the options of `specs`, the metrics asked
/// for. An option only other metrics read is allowed: one command line serves several runs.
pub fn check_options<'a>(
    specs: &[&MetricSpec],
    options: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    for name in options {
        if registry()
            .iter()
            .any(|s| s.options.contains(&name.as_str()))
        {
            continue;
        }
        let mut known: Vec<&str> = specs
            .iter()
            .flat_map(|s| s.options.iter().copied())
            .collect();
        known.sort_unstable();
        known.dedup();
        let metrics: Vec<&str> = specs.iter().map(|s| s.name).collect();
        return Err(format!(
            "option '{name}' is read by no metric; {} {}",
            metrics.join(", "),
            if known.is_empty() {
                "take no options".to_string()
            } else {
                format!("take {}", known.join(", "))
            }
        ));
    }
    Ok(())
}

/// Computes metric `spec` for one architecture.
pub fn compute(
    spec: &MetricSpec,
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    (spec.compute)(builder, batch, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_api::spec::Metric;

    #[test]
    fn the_registry_holds_exactly_the_api_metrics_under_their_api_names() {
        let api: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        let ours: Vec<&str> = registry().iter().map(|s| s.name).collect();
        assert_eq!(ours, api, "registry and nas_api::spec::Metric::ALL differ");
        for m in Metric::ALL {
            // The name a spec is written with is the name the registry answers to.
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert!(lookup(m.as_str()).is_ok());
        }
    }

    #[test]
    fn an_option_no_chosen_metric_reads_is_an_error_naming_the_ones_they_take() {
        let specs = [lookup("angle_loss").unwrap(), lookup("zen").unwrap()];
        let ok = ["iterations".to_string(), "repeats".to_string()];
        assert!(check_options(&specs, &ok).is_ok());
        let err = check_options(&specs, &["iteration".to_string()]).unwrap_err();
        assert!(
            err.contains("'iteration'") && err.contains("iterations"),
            "{err}"
        );
        let params = [lookup("params").unwrap()];
        // Read by other metrics: allowed (one command line serves several runs).
        assert!(check_options(&params, &["repeats".to_string()]).is_ok());
        let err = check_options(&params, &["repeat".to_string()]).unwrap_err();
        assert!(err.contains("take no options"), "{err}");
    }
}

//! `flops`: multiply-adds of the conv and linear layers for one image (bias adds where a bias
//! exists), as the search space's builder counts them. Higher is treated as better (a larger
//! network), the usual convention of the zero-cost-proxy comparisons.
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::NetBuilder;

pub const SPEC: MetricSpec = MetricSpec {
    name: "flops",
    needs: Needs {
        data: false,
        labels: false,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 0,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "multiply-adds for one image from the builder",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    _batch: &MetricBatch,
    _ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    Ok(MetricValue::Scalar(builder.flops() as f64))
}

//! `params`: the number of parameters, as the search space's builder counts it (NB201 counts
//! every op of the cell, as the benchmark publishes it). Higher is treated as better, as in the
//! paper's search rank, which adds the #Param rank.
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::NetBuilder;

pub const SPEC: MetricSpec = MetricSpec {
    name: "params",
    needs: Needs {
        data: false,
        labels: false,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 0,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "parameter count from the builder (the space's published convention)",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    _batch: &MetricBatch,
    _ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    Ok(MetricValue::Scalar(builder.param_count() as f64))
}

//! `linear_regions`: the number of distinct ReLU activation patterns (one binary code per input
//! over all ReLU units, `x > 0`) among a set of inputs: `sum_i 1 / #{j : code_j == code_i}`,
//! computed as TE-NAS does from Hamming distances `A (1 - A)^T + (1 - A) A^T`. Training-mode
//! BN, Kaiming-normal fan-in init, no gradients. Higher is better.
//!
//! Source: Chen et al., TE-NAS (ICLR 2021): `lib/procedures/linear_region_counter.py`
//! (`Linear_Region_Collector(input_size=(1000, 1, 3, 3), sample_batch=3)` in `prune_tenas.py`)
//! on the *thin* network (`TinyNetworkDarts`, C=1, N=1, depth 1, no stem). As there:
//! * the network is the candidate's cell at one channel with no stem, then BN-ReLU, pooling
//!   and the classifier (`NetBuilder::tenas_thin`);
//! * the inputs are 3 batches of 1000 one-channel 3x3 crops (`RandomCrop(3)`, `RandChannel(1)`)
//!   of normalised training images, one image per crop; each batch is a forward pass of its
//!   own (BN batch statistics per batch), and the patterns of all 3000 are counted together;
//! * the code holds every ReLU TE-NAS hooks: its supernet runs a ReLU-conv op on every edge
//!   (weighted 0 unless chosen), so the ReLU pattern of every node that feeds an edge (the
//!   cell input and nodes 1, 2) is part of the code whatever the chosen ops, plus the head's
//!   ReLU (`Forward::cell_node_relus`).
//!
//! The crop offsets and channels are drawn from the metric's seed. The batch size (3000) is
//! the number of crops; option `batches` (3) splits them into that many forward passes. A
//! space without a thin form (DARTS) counts on the candidate as built, on the first 100 images
//! average-pooled to 3x3 (a stated fallback: at full width nearly every image gets its own
//! pattern, so the count saturates near 100).
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{no_grad, Kind, Tensor};

use super::common::{fresh_net, metric_batch, Init};
use super::{MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind};
use crate::nn::{Forward, Net, NetBuilder};

/// TE-NAS's crop side.
const SIDE: i64 = 3;
/// Images the fallback (no thin form) counts on.
const FALLBACK_IMAGES: usize = 100;

pub const SPEC: MetricSpec = MetricSpec {
    name: "linear_regions",
    needs: Needs {
        data: true,
        labels: false,
        training: false,
    },
    higher_is_better: true,
    default_batch_size: 3000,
    value: ValueKind::Scalar,
    per_class: None,
    summary: "distinct ReLU activation patterns of 3000 3x3 crops on the thin network (TE-NAS)",
    options: &[],
    compute,
};

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let batches = count_option(ctx, "batches", 3.0)?;
    let Some(thin) = builder.tenas_thin() else {
        return fallback(builder, batch, ctx);
    };
    let b = metric_batch(batch, ctx, &SPEC)?;
    let n = b.len();
    if batches > n {
        return Err(MetricError::invalid(
            SPEC.name,
            format!("option batches ({batches}) exceeds the {n} crops (the batch size)"),
        ));
    }
    let (_, _, h, w) = b.images.size4().map_err(MetricError::torch(SPEC.name))?;
    if h < SIDE || w < SIDE {
        return Err(MetricError::invalid(
            SPEC.name,
            format!("images of {h}x{w} are smaller than the {SIDE}x{SIDE} crops"),
        ));
    }
    let x = crops_of(&b.images, n, ctx.seed);
    let (_vs, net) = fresh_net(thin.as_ref(), ctx, Init::KaimingNormalFanIn, Kind::Float);
    // Each pass's ReLU inputs flattened side by side, [crops of the pass, units]; the passes
    // stacked by rows: one code matrix over all crops.
    let mut codes = Vec::with_capacity(batches);
    for part in x.chunk(batches as i64, 0) {
        let relus = relu_inputs(net.as_ref(), &part, true);
        if relus.is_empty() {
            return Err(no_relus());
        }
        let rows = part.size()[0];
        let flat: Vec<Tensor> = relus.iter().map(|r| r.reshape([rows, -1])).collect();
        codes.push(Tensor::cat(&flat, 1));
    }
    Ok(MetricValue::Scalar(count_patterns(&[Tensor::cat(
        &codes, 0,
    )])))
}

/// A positive whole-number option.
fn count_option(ctx: &MetricContext, name: &str, default: f64) -> Result<usize, MetricError> {
    let v = ctx.option(name, default);
    if v.is_nan() || v < 1.0 || v.fract() != 0.0 || v > 1e6 {
        return Err(MetricError::invalid(
            SPEC.name,
            format!("option {name} must be a whole number from 1 to 1000000, got {v}"),
        ));
    }
    Ok(v as usize)
}

/// One 3x3 crop of one random channel per image, for the first `n` images `[n, 1, 3, 3]`:
/// offsets uniform over the valid positions (`RandomCrop(3, padding=0)`), channel uniform.
pub fn crops_of(images: &Tensor, n: usize, seed: u64) -> Tensor {
    let size = images.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c69_6e65_6172_5f72);
    let mut draws = Vec::with_capacity(3 * n);
    for _ in 0..n {
        draws.push(rng.random_range(0..c));
        draws.push(rng.random_range(0..=h - SIDE));
        draws.push(rng.random_range(0..=w - SIDE));
    }
    super::dump::record_crops(&draws);
    crops_at(images, &draws)
}

/// The crops at `(channel, row, column)` triples, one per image in order: one gather.
pub fn crops_at(images: &Tensor, draws: &[i64]) -> Tensor {
    let size = images.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let mut index = Vec::with_capacity(draws.len() / 3 * (SIDE * SIDE) as usize);
    for (i, d) in draws.chunks(3).enumerate() {
        let base = ((i as i64 * c + d[0]) * h + d[1]) * w + d[2];
        for r in 0..SIDE {
            for k in 0..SIDE {
                index.push(base + r * w + k);
            }
        }
    }
    let n = (draws.len() / 3) as i64;
    let index = Tensor::from_slice(&index).to_device(images.device());
    no_grad(|| {
        images
            .reshape([-1])
            .index_select(0, &index)
            .view([n, 1, SIDE, SIDE])
    })
}

/// Every recorded ReLU input of one forward pass (all ops run, cell nodes included).
fn relu_inputs(net: &dyn Net, x: &Tensor, cell_nodes: bool) -> Vec<Tensor> {
    no_grad(|| {
        let mut f = Forward {
            train: true,
            all_ops: true,
            cell_node_relus: cell_nodes,
            relu_inputs: Some(Vec::new()),
            ..Default::default()
        };
        let _ = net.forward(x, &mut f);
        f.relu_inputs.take().unwrap_or_default()
    })
}

fn no_relus() -> MetricError {
    MetricError::invalid(
        SPEC.name,
        "the network recorded no ReLU inputs (Forward::relu_inputs)",
    )
}

/// Spaces without a thin form: the candidate as built, images average-pooled to 3x3.
fn fallback(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let b = metric_batch(batch, ctx, &SPEC)?;
    let b = b.take_balanced(FALLBACK_IMAGES.min(b.len()), SPEC.name)?;
    let (_vs, net) = fresh_net(builder, ctx, Init::KaimingNormalFanIn, Kind::Float);
    let x = b.images.adaptive_avg_pool2d([SIDE, SIDE]);
    let relus = relu_inputs(net.as_ref(), &x, false);
    if relus.is_empty() {
        return Err(no_relus());
    }
    Ok(MetricValue::Scalar(count_patterns(&relus)))
}

/// Distinct activation patterns among the images, from every ReLU's input `[N, ...]`.
pub fn count_patterns(relu_inputs: &[Tensor]) -> f64 {
    no_grad(|| {
        let n = relu_inputs[0].size()[0];
        let codes: Vec<Tensor> = relu_inputs
            .iter()
            .map(|r| r.reshape([n, -1]).gt(0.0).to_kind(Kind::Float))
            .collect();
        let a = Tensor::cat(&codes, 1);
        let mismatch = a.matmul(&(a.ones_like() - &a).tr());
        let hamming = &mismatch + mismatch.tr();
        // Row counts are whole numbers far below 2^24: exact in float.
        let same = hamming
            .eq(0.0)
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        same.to_kind(Kind::Double)
            .reciprocal()
            .sum(Kind::Double)
            .double_value(&[])
    })
}

//! `angle_loss`: the paper's light-weight training-based metric.
//!
//! Definition (Yang et al., "Revisiting Training-free NAS Metrics: An Efficient Training-based
//! Method", WACV 2023, as its authors' released code computes it):
//! * data: 100 training images, 10 per class, drawn once with a fixed seed and shared by every
//!   candidate (the caller's batch); each iteration re-draws a random 4-pixel-padded 32x32 crop
//!   (padding with black pixels, i.e. `-mean/std` after normalisation) and a horizontal flip
//!   per image; here the draws come from a ChaCha RNG seeded by `seed` and are applied as one
//!   batched gather on the metric's device;
//! * network: Kaiming-normal fan-in init of conv/linear weights, zero biases, BN 1 and 0,
//!   seeded so every candidate starts from reproducible weights;
//! * training: 50 iterations on the whole batch, SGD lr 0.2, Nesterov momentum 0.9, weight decay
//!   5e-4 on all parameters, constant lr, BN in training mode, cross-entropy;
//! * value: `cos` = cosine similarity of the classifier weight matrix (bias excluded) before and
//!   after training; `loss` = the loss of the 50th forward pass (before the last update);
//! * degenerate rule: `cos >= 0.95` gives `{cos 0, loss 100, degenerate true}`; so does a network
//!   without learnable ops in its cell (`!has_learnable_ops()`), which is not trained at all.
//!
//! Options: `iterations` (50), `lr` (0.2), `momentum` (0.9), `weight_decay` (5e-4), `repeats`
//! (1; seeds `seed, seed+1, ...`, cos and loss averaged, degenerate only if every repeat is),
//! `augment` (1; 0 trains on the batch as given, for comparisons with another implementation).
//! The default batch (100) is the 10-per-class sample.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{nn::OptimizerConfig, Device, Kind, Tensor};

use super::common::{check_labels, fresh_net_seeded, metric_batch, Init};
use super::{
    AngleLoss, MetricBatch, MetricContext, MetricError, MetricSpec, MetricValue, Needs, ValueKind,
};
use crate::nn::{Forward, NetBuilder};

pub const SPEC: MetricSpec = MetricSpec {
    name: "angle_loss",
    needs: Needs {
        data: true,
        labels: true,
        training: true,
    },
    higher_is_better: true,
    default_batch_size: 100,
    value: ValueKind::AngleLoss,
    // The paper's sample: 100 images of CIFAR-10's 10 classes.
    per_class: Some(10),
    summary: "cosine of classifier weights before/after 50 SGD steps and the final loss (paper)",
    options: &[
        "iterations",
        "lr",
        "momentum",
        "weight_decay",
        "augment",
        "repeats",
    ],
    compute,
};

/// Cosine at or above which a candidate is treated as not having learned (degenerate).
pub const DEGENERATE_COS: f64 = 0.95;
/// The worst values a degenerate candidate gets.
pub const DEGENERATE: AngleLoss = AngleLoss {
    cos: 0.0,
    loss: 100.0,
    degenerate: true,
};

/// Applies the degenerate rule to a measured `(cos, loss)`.
pub fn apply_degenerate_rule(cos: f64, loss: f64) -> AngleLoss {
    if cos >= DEGENERATE_COS {
        DEGENERATE
    } else {
        AngleLoss {
            cos,
            loss,
            degenerate: false,
        }
    }
}

/// Cosine similarity of two weight tensors, flattened (computed in float64).
pub fn cosine(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.reshape([-1]).to_kind(Kind::Double);
    let b = b.reshape([-1]).to_kind(Kind::Double);
    let dot = a.dot(&b);
    let denom = a.norm() * b.norm();
    (dot / denom).double_value(&[])
}

/// Hyper-parameters of the short training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protocol {
    pub iterations: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub augment: bool,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            iterations: 50,
            lr: 0.2,
            momentum: 0.9,
            weight_decay: 5e-4,
            augment: true,
        }
    }
}

impl Protocol {
    fn from_ctx(ctx: &MetricContext) -> Result<Self, MetricError> {
        let d = Protocol::default();
        let iterations = ctx.option("iterations", d.iterations as f64);
        if iterations.is_nan() || iterations < 1.0 || iterations.fract() != 0.0 {
            return Err(MetricError::invalid(
                SPEC.name,
                "option iterations must be >= 1",
            ));
        }
        Ok(Protocol {
            iterations: iterations as usize,
            lr: ctx.option("lr", d.lr),
            momentum: ctx.option("momentum", d.momentum),
            weight_decay: ctx.option("weight_decay", d.weight_decay),
            augment: ctx.option("augment", 1.0) != 0.0,
        })
    }
}

fn compute(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    ctx: &MetricContext,
) -> Result<MetricValue, MetricError> {
    let protocol = Protocol::from_ctx(ctx)?;
    let repeats = ctx.option("repeats", 1.0);
    if repeats.is_nan() || repeats < 1.0 || repeats.fract() != 0.0 {
        return Err(MetricError::invalid(
            SPEC.name,
            "option repeats must be a positive integer",
        ));
    }
    if !builder.has_learnable_ops() {
        return Ok(MetricValue::AngleLoss(DEGENERATE));
    }
    let b = metric_batch(batch, ctx, &SPEC)?;
    check_labels(&b, builder, SPEC.name)?;
    let aug = if protocol.augment {
        Some(Augmenter::new(&b)?)
    } else {
        None
    };
    let (mut cos, mut loss, mut all_degenerate) = (0.0, 0.0, true);
    for r in 0..repeats as u64 {
        let seed = ctx.seed.wrapping_add(r);
        let v = train_once(builder, &b, aug.as_ref(), seed, ctx.device, &protocol)?;
        cos += v.cos;
        loss += v.loss;
        all_degenerate &= v.degenerate;
    }
    Ok(MetricValue::AngleLoss(AngleLoss {
        cos: cos / repeats,
        loss: loss / repeats,
        degenerate: all_degenerate,
    }))
}

/// One seeded initialisation and short training, with the degenerate rule applied.
pub fn train_once(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    aug: Option<&Augmenter>,
    seed: u64,
    device: Device,
    p: &Protocol,
) -> Result<AngleLoss, MetricError> {
    let err = MetricError::torch(SPEC.name);
    let (vs, net) = fresh_net_seeded(builder, seed, device, Init::KaimingNormalFanIn, Kind::Float);
    let before = net.classifier_weight().detach().copy();
    let mut opt = tch::nn::Sgd {
        momentum: p.momentum,
        dampening: 0.0,
        wd: p.weight_decay,
        nesterov: p.momentum > 0.0,
    }
    .build(&vs, p.lr)
    .map_err(err)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x616e_676c_655f_6c6f);
    let mut last_loss: Option<Tensor> = None;
    for _ in 0..p.iterations {
        let x = match aug {
            Some(a) => a.draw(&mut rng),
            None => {
                // For an exchange dump: the centred crop without flip is the batch as given.
                let n = batch.len();
                super::dump::record_draws(&vec![PAD; n], &vec![PAD; n], &vec![0; n]);
                batch.images.shallow_clone()
            }
        };
        let logits = net.forward(&x, &mut Forward::train());
        let loss = logits.cross_entropy_for_logits(&batch.labels);
        opt.zero_grad();
        loss.f_backward().map_err(MetricError::torch(SPEC.name))?;
        opt.step();
        last_loss = Some(loss.detach());
    }
    let loss = last_loss.map(|l| l.double_value(&[])).unwrap_or(f64::NAN);
    let after = net.classifier_weight().detach();
    Ok(apply_degenerate_rule(cosine(&before, &after), loss))
}

/// Random 4-pixel-padded crops and horizontal flips of a whole batch as one gather.
pub struct Augmenter {
    /// `[N, C, (H+2P)*(W+2P)]`, padded with each channel's normalised black.
    padded: Tensor,
    n: i64,
    c: i64,
    h: i64,
    w: i64,
    /// `0..W` and `0..H` on the device.
    cols: Tensor,
    rows: Tensor,
}

/// Crop padding in pixels.
pub const PAD: i64 = 4;

impl Augmenter {
    pub fn new(batch: &MetricBatch) -> Result<Self, MetricError> {
        let size = batch.images.size();
        let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
        let norm = &batch.normalization;
        if norm.mean.len() != c as usize || norm.std.len() != c as usize {
            return Err(MetricError::invalid(
                SPEC.name,
                "normalisation does not match channels",
            ));
        }
        let black: Vec<f32> = norm
            .mean
            .iter()
            .zip(&norm.std)
            .map(|(m, s)| (-m / s) as f32)
            .collect();
        let device = batch.device();
        let fill = Tensor::from_slice(&black)
            .to_device(device)
            .view([1, c, 1, 1]);
        let padded = fill
            .expand([n, c, h + 2 * PAD, w + 2 * PAD], false)
            .contiguous();
        padded
            .narrow(2, PAD, h)
            .narrow(3, PAD, w)
            .copy_(&batch.images);
        let padded = padded.view([n, c, -1]);
        let cols = Tensor::arange(w, (Kind::Int64, device));
        let rows = Tensor::arange(h, (Kind::Int64, device));
        Ok(Augmenter {
            padded,
            n,
            c,
            h,
            w,
            cols,
            rows,
        })
    }

    /// One augmented batch: per image a crop offset in `0..=2P` on each axis and a flip bit.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> Tensor {
        let n = self.n as usize;
        let mut oy = Vec::with_capacity(n);
        let mut ox = Vec::with_capacity(n);
        let mut flip = Vec::with_capacity(n);
        for _ in 0..n {
            oy.push(rng.random_range(0..=2 * PAD));
            ox.push(rng.random_range(0..=2 * PAD));
            flip.push(rng.random_bool(0.5) as i64);
        }
        super::dump::record_draws(&oy, &ox, &flip);
        self.apply(&oy, &ox, &flip)
    }

    /// The batch cropped at `(oy, ox)` per image and flipped where `flip` is 1.
    pub fn apply(&self, oy: &[i64], ox: &[i64], flip: &[i64]) -> Tensor {
        let device = self.padded.device();
        let pw = self.w + 2 * PAD;
        // One host-to-device transfer for all three draws.
        let draws: Vec<i64> = oy.iter().chain(ox).chain(flip).copied().collect();
        let draws = Tensor::from_slice(&draws)
            .to_device(device)
            .view([3, self.n, 1]);
        let (oy, ox, flip) = (draws.get(0), draws.get(1), draws.get(2));
        let rows = &oy + self.rows.view([1, self.h]);
        // Flipped column j reads column W-1-j of the crop.
        let straight = self.cols.view([1, self.w]);
        let mirrored = (self.w - 1) - &straight;
        let cols = &ox + &straight * (flip.ones_like() - &flip) + mirrored * &flip;
        let index = (rows.unsqueeze(2) * pw + cols.unsqueeze(1)).view([self.n, 1, self.h * self.w]);
        let index = index.expand([self.n, self.c, self.h * self.w], false);
        self.padded
            .gather(2, &index, false)
            .view([self.n, self.c, self.h, self.w])
    }
}

/// Convenience for tests and benchmarks: the metric with an explicit protocol and one seed.
pub fn angle_loss_with(
    builder: &dyn NetBuilder,
    batch: &MetricBatch,
    seed: u64,
    protocol: &Protocol,
) -> Result<AngleLoss, MetricError> {
    if !builder.has_learnable_ops() {
        return Ok(DEGENERATE);
    }
    let aug = if protocol.augment {
        Some(Augmenter::new(batch)?)
    } else {
        None
    };
    train_once(builder, batch, aug.as_ref(), seed, batch.device(), protocol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Normalization;

    #[test]
    fn crop_and_flip_match_a_per_image_reference() {
        let (n, c, h, w) = (2, 2, 5, 6);
        let images = Tensor::arange(n * c * h * w, (Kind::Float, Device::Cpu)).view([n, c, h, w]);
        let norm = Normalization {
            mean: vec![0.5, 0.25],
            std: vec![0.5, 0.5],
        };
        let batch = MetricBatch {
            images: images.shallow_clone(),
            labels: Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            normalization: norm,
        };
        let aug = Augmenter::new(&batch).unwrap();
        let (oy, ox, flip) = ([0i64, 8], [3i64, 8], [1i64, 0]);
        let out = aug.apply(&oy, &ox, &flip);
        let black = [-1.0f64, -0.5];
        for img in 0..n {
            for ch in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        let jj = if flip[img as usize] == 1 {
                            w - 1 - j
                        } else {
                            j
                        };
                        let (py, px) = (i + oy[img as usize] - PAD, jj + ox[img as usize] - PAD);
                        let expected = if py < 0 || py >= h || px < 0 || px >= w {
                            black[ch as usize]
                        } else {
                            images.double_value(&[img, ch, py, px])
                        };
                        assert_eq!(
                            out.double_value(&[img, ch, i, j]),
                            expected,
                            "{img} {ch} {i} {j}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn degenerate_rule_at_the_threshold() {
        assert_eq!(apply_degenerate_rule(0.95, 0.3), DEGENERATE);
        assert_eq!(apply_degenerate_rule(0.99, 0.3), DEGENERATE);
        let v = apply_degenerate_rule(0.9499, 0.3);
        assert!(!v.degenerate);
        assert_eq!((v.cos, v.loss), (0.9499, 0.3));
    }
}

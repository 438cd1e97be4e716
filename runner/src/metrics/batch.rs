//! The batch every metric reads: normalised float images on the metric's device, labels, and
//! the normalisation (the paper's padded crop pads with raw black pixels, i.e. `-mean/std`).
use tch::{Device, Kind, Tensor};

use super::MetricError;
use crate::data::{ImageBatch, Normalization};

/// Float images `[N, C, H, W]` already normalised, int64 labels `[N]`, both on one device.
#[derive(Debug)]
pub struct MetricBatch {
    pub images: Tensor,
    pub labels: Tensor,
    pub normalization: Normalization,
}

impl MetricBatch {
    /// Scales uint8 images to [0, 1], normalises them per channel and moves them to `device`.
    pub fn from_image_batch(batch: &ImageBatch, device: Device) -> Result<Self, MetricError> {
        let size = batch.images.size();
        if size.len() != 4 {
            return Err(MetricError::invalid(
                "batch",
                format!("images must be [N, C, H, W], got {size:?}"),
            ));
        }
        let (n, c) = (size[0], size[1]);
        let norm = &batch.normalization;
        if norm.mean.len() != c as usize || norm.std.len() != c as usize {
            return Err(MetricError::invalid(
                "batch",
                format!(
                    "normalisation has {} means and {} stds for {c} channels",
                    norm.mean.len(),
                    norm.std.len()
                ),
            ));
        }
        if norm.std.iter().any(|s| s.is_nan() || *s <= 0.0) {
            return Err(MetricError::invalid(
                "batch",
                "normalisation std must be positive",
            ));
        }
        if batch.labels.size() != [n] {
            return Err(MetricError::invalid(
                "batch",
                format!("labels must be [{n}], got {:?}", batch.labels.size()),
            ));
        }
        let mean = Tensor::from_slice(&norm.mean)
            .to_kind(Kind::Float)
            .view([1, c, 1, 1]);
        let std = Tensor::from_slice(&norm.std)
            .to_kind(Kind::Float)
            .view([1, c, 1, 1]);
        let images = ((batch.images.to_kind(Kind::Float) / 255.0 - mean) / std).to_device(device);
        let labels = batch.labels.to_kind(Kind::Int64).to_device(device);
        Ok(MetricBatch {
            images,
            labels,
            normalization: norm.clone(),
        })
    }

    /// Synthetic data (`--data random`): standard-normal images, uniform labels, identity
    /// normalisation; drawn on the CPU from `seed` so every device sees the same batch.
    pub fn random(n: i64, shape: (i64, i64, i64), classes: i64, seed: u64, device: Device) -> Self {
        let (c, h, w) = shape;
        tch::manual_seed(seed as i64);
        let images = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)).to_device(device);
        let labels = Tensor::randint(classes, [n], (Kind::Int64, Device::Cpu)).to_device(device);
        let normalization = Normalization {
            mean: vec![0.0; c as usize],
            std: vec![1.0; c as usize],
        };
        MetricBatch {
            images,
            labels,
            normalization,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn device(&self) -> Device {
        self.images.device()
    }

    /// The first `n` images taken class by class in turn (label order, then input order), so a
    /// balanced sample stays balanced; `n` above the batch size is an error naming `metric`.
    pub fn take_balanced(
        &self,
        n: usize,
        metric: &'static str,
    ) -> Result<MetricBatch, MetricError> {
        let len = self.len();
        if n > len {
            return Err(MetricError::invalid(
                metric,
                format!("needs a batch of {n} images, the data holds {len}"),
            ));
        }
        if n == len {
            return Ok(self.shallow());
        }
        let labels: Vec<i64> = Vec::<i64>::try_from(&self.labels.to_device(Device::Cpu))
            .map_err(MetricError::torch(metric))?;
        let mut by_class: std::collections::BTreeMap<i64, std::collections::VecDeque<i64>> =
            Default::default();
        for (i, l) in labels.iter().enumerate() {
            by_class.entry(*l).or_default().push_back(i as i64);
        }
        let mut picked = Vec::with_capacity(n);
        while picked.len() < n {
            for queue in by_class.values_mut() {
                if picked.len() < n {
                    if let Some(i) = queue.pop_front() {
                        picked.push(i);
                    }
                }
            }
        }
        let index = Tensor::from_slice(&picked).to_device(self.device());
        Ok(MetricBatch {
            images: self.images.index_select(0, &index),
            labels: self.labels.index_select(0, &index),
            normalization: self.normalization.clone(),
        })
    }

    /// A second handle on the same tensors (no copy).
    pub fn shallow(&self) -> MetricBatch {
        MetricBatch {
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
            normalization: self.normalization.clone(),
        }
    }
}

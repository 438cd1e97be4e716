//! Exchange dumps for the benchmark's parity check (`score --dump-dir`; format in
//! bench/README.md, "The exchange format"): per architecture and metric, one safetensors file
//! with the metric's initial weights, the batch it read, angle_loss's crop/flip draws, the
//! linear-region crops and Zen's noise, so that the PyTorch reference
//! (`bench/reference/check.py`) recomputes the same value.
//!
//! The recording is a thread-local side channel: the metrics push what they draw into it while
//! one is active, so no metric signature carries benchmark plumbing. `score` computes one
//! metric at a time per thread (determinism needs that anyway), so the recording is unambiguous.
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use tch::{nn::VarStore, Device, Kind, Tensor};

use super::MetricBatch;

/// What one metric drew on one architecture.
#[derive(Default)]
pub struct Recording {
    /// Our parameter and buffer paths with their values right after initialisation (first
    /// initialisation only: with `repeats` > 1 the later ones are not recorded).
    pub weights: Option<Vec<(String, Tensor)>>,
    /// The batch the metric read (the last one recorded wins: the metric's own slice).
    pub batch: Option<MetricBatch>,
    /// angle_loss: per iteration, the crop rows, crop columns and flip bits per image.
    pub draws: Vec<[Vec<i64>; 3]>,
    /// Zen-NAS: the Gaussian input and the mixup noise.
    pub zen: Option<(Tensor, Tensor)>,
    /// linear_regions: per crop, the channel, row and column (flattened triples).
    pub crops: Option<Vec<i64>>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// Starts recording on this thread (dropping any unfinished recording).
pub fn start() {
    ACTIVE.with(|a| *a.borrow_mut() = Some(Recording::default()));
}

/// Stops recording and returns what was recorded.
pub fn finish() -> Option<Recording> {
    ACTIVE.with(|a| a.borrow_mut().take())
}

fn with(f: impl FnOnce(&mut Recording)) {
    ACTIVE.with(|a| {
        if let Some(r) = a.borrow_mut().as_mut() {
            f(r)
        }
    });
}

pub(crate) fn record_weights(vs: &VarStore) {
    with(|r| {
        if r.weights.is_none() {
            r.weights = Some(snapshot(vs));
        }
    });
}

/// A CPU copy of every variable of `vs`, sorted by path.
pub fn snapshot(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut w: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().to_device(Device::Cpu).copy()))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

pub(crate) fn record_batch(b: &MetricBatch) {
    with(|r| r.batch = Some(b.shallow()));
}

pub(crate) fn record_draws(oy: &[i64], ox: &[i64], flip: &[i64]) {
    with(|r| r.draws.push([oy.to_vec(), ox.to_vec(), flip.to_vec()]));
}

pub(crate) fn record_crops(draws: &[i64]) {
    with(|r| r.crops = Some(draws.to_vec()));
}

pub(crate) fn record_zen(x: &Tensor, eps: &Tensor) {
    with(|r| {
        if r.zen.is_none() {
            r.zen = Some((x.to_device(Device::Cpu), eps.to_device(Device::Cpu)));
        }
    });
}

/// Why a dump could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Write { path: String, message: String },
}

/// One tensor of the file: dtype, shape, little-endian bytes.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn entry(t: &Tensor, what: &str) -> Result<Entry, DumpError> {
    let t = t.to_device(Device::Cpu).contiguous();
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let n = t.numel();
    let bad = |e: tch::TchError| DumpError::Invalid(format!("{what}: {e}"));
    let (dtype, bytes) = match t.kind() {
        Kind::Float => {
            let mut v = vec![0f32; n];
            t.f_copy_data(&mut v, n).map_err(bad)?;
            (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        Kind::Double => {
            let mut v = vec![0f64; n];
            t.f_copy_data(&mut v, n).map_err(bad)?;
            (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        Kind::Int64 => {
            let mut v = vec![0i64; n];
            t.f_copy_data(&mut v, n).map_err(bad)?;
            (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        Kind::Uint8 => {
            let mut v = vec![0u8; n];
            t.f_copy_data(&mut v, n).map_err(bad)?;
            (Dtype::U8, v)
        }
        k => {
            return Err(DumpError::Invalid(format!(
                "{what}: no exchange dtype for {k:?}"
            )))
        }
    };
    Ok(Entry {
        dtype,
        shape,
        bytes,
    })
}

/// The normalised batch back as the uint8 images it came from (`round((x std + mean) 255)`);
/// an error when it did not come from uint8 images (e.g. `--data random`).
pub fn batch_to_u8(b: &MetricBatch) -> Result<Tensor, DumpError> {
    let c = b.normalization.mean.len() as i64;
    let mean = Tensor::from_slice(&b.normalization.mean).view([1, c, 1, 1]);
    let std = Tensor::from_slice(&b.normalization.std).view([1, c, 1, 1]);
    let x = b.images.to_device(Device::Cpu).to_kind(Kind::Double);
    let pixels = (x * std + mean) * 255.0;
    let rounded = pixels.round();
    let off = (&pixels - &rounded).abs().max().double_value(&[]);
    let (lo, hi) = (
        rounded.min().double_value(&[]),
        rounded.max().double_value(&[]),
    );
    if off > 1e-2 || lo < 0.0 || hi > 255.0 {
        return Err(DumpError::Invalid(
            "the batch is not made of uint8 images (use a data set, not --data random)".into(),
        ));
    }
    Ok(rounded.to_kind(Kind::Uint8))
}

/// Writes `rec` to `path`: every recorded weight under the name `rename` gives it (an error
/// names a path it cannot map), the batch, and the draws or noise when recorded. Metadata:
/// `arch`, `num_classes` and `metric`.
pub fn write(
    path: &Path,
    rec: &Recording,
    rename: &dyn Fn(&str) -> Option<String>,
    meta: BTreeMap<&str, String>,
) -> Result<(), DumpError> {
    let mut tensors: BTreeMap<String, Entry> = BTreeMap::new();
    let weights = rec
        .weights
        .as_ref()
        .ok_or_else(|| DumpError::Invalid("the metric built no network".into()))?;
    for (name, t) in weights {
        let exchange = rename(name).ok_or_else(|| {
            DumpError::Invalid(format!("parameter '{name}' has no exchange name"))
        })?;
        tensors.insert(exchange, entry(t, name)?);
    }
    let batch = rec
        .batch
        .as_ref()
        .ok_or_else(|| DumpError::Invalid("no batch was recorded".into()))?;
    tensors.insert(
        "input.images".into(),
        entry(&batch_to_u8(batch)?, "images")?,
    );
    let labels = batch.labels.to_kind(Kind::Int64);
    tensors.insert("input.labels".into(), entry(&labels, "labels")?);
    let norm = &batch.normalization;
    tensors.insert(
        "input.mean".into(),
        entry(&Tensor::from_slice(&norm.mean), "mean")?,
    );
    tensors.insert(
        "input.std".into(),
        entry(&Tensor::from_slice(&norm.std), "std")?,
    );
    if !rec.draws.is_empty() {
        let rows = |k: usize| -> Tensor {
            let flat: Vec<i64> = rec.draws.iter().flat_map(|d| d[k].clone()).collect();
            Tensor::from_slice(&flat).view([rec.draws.len() as i64, -1])
        };
        tensors.insert("aug.dy".into(), entry(&rows(0), "crop rows")?);
        tensors.insert("aug.dx".into(), entry(&rows(1), "crop columns")?);
        let flip = rows(2).to_kind(Kind::Uint8);
        tensors.insert("aug.flip".into(), entry(&flip, "flips")?);
    }
    if let Some(crops) = &rec.crops {
        let t = Tensor::from_slice(crops).view([-1, 3]);
        tensors.insert("crops.draws".into(), entry(&t, "crop draws")?);
    }
    if let Some((z1, z2)) = &rec.zen {
        tensors.insert(
            "zen.z1".into(),
            entry(&z1.to_kind(Kind::Float), "zen input")?,
        );
        tensors.insert(
            "zen.z2".into(),
            entry(&z2.to_kind(Kind::Float), "zen noise")?,
        );
    }
    let views = tensors
        .iter()
        .map(|(k, e)| {
            TensorView::new(e.dtype, e.shape.clone(), &e.bytes)
                .map(|v| (k.clone(), v))
                .map_err(|err| DumpError::Invalid(format!("{k}: {err:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta: HashMap<String, String> = meta.into_iter().map(|(k, v)| (k.into(), v)).collect();
    safetensors::tensor::serialize_to_file(views, &Some(meta), path).map_err(|e| DumpError::Write {
        path: path.display().to_string(),
        message: format!("{e:?}"),
    })
}

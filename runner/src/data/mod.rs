//! Data sets: readers (ImageNet-style folders and tars, WebDataset shards, CIFAR-10 JPEG folders
//! and binaries, Fashion-MNIST IDX), staging into packed shards, and the streaming loader.
use tch::Tensor;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DataError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Per-channel normalisation of a data set, applied to images scaled to [0, 1].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// A batch of decoded images held in memory.
#[derive(Debug)]
pub struct ImageBatch {
    /// uint8 `[N, C, H, W]`.
    pub images: Tensor,
    /// int64 `[N]`.
    pub labels: Tensor,
    /// Class names in index order (sorted names).
    pub classes: Vec<String>,
    pub normalization: Normalization,
}

/// Which split of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

/// `per_class` images of every class from `split` of the data set at `location` (any format the
/// readers know), drawn with `seed`: the paper's metric trains on 10 per class.
pub fn load_balanced_sample(
    location: &str,
    split: Split,
    per_class: usize,
    seed: u64,
) -> Result<ImageBatch, DataError> {
    let _ = (split, per_class, seed);
    Err(DataError::Invalid(format!(
        "no reader for '{location}' yet"
    )))
}

//! Data sets: readers (ImageNet-style folders and tars, WebDataset shards, CIFAR-10 JPEG folders
//! and binaries, Fashion-MNIST IDX), staging into packed shards, and the streaming loader.
//!
//! * [`source`]: format detection; [`readers`]: one reader per format behind one trait, giving
//!   the [`records`] of a split.
//! * [`image`]: JPEG decoding, short-side resize and crops.
//! * [`sample`]: the seeded, balanced in-memory sample the metrics score on.
//! * [`shards`]: the packed shard format and its index.
//! * [`stage`]: `stage-data` as a library function.
//! * [`augment`] and [`loader`]: augmentation and the prefetching shard loader.
pub mod augment;
pub mod image;
pub mod loader;
mod readers;
pub mod records;
pub mod sample;
pub mod shards;
pub mod source;
pub mod stage;

pub use loader::{Batch, Loader, LoaderConfig};
pub use readers::cifar_bin::CIFAR10_CLASSES;
pub(crate) use readers::tarball;
pub use sample::load_balanced_sample;
pub use shards::{ShardIndex, ShardInfo};
pub use source::{DataSource, Format};
pub use stage::{stage_data, StageConfig, StageReport};

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
    #[error("{path}: no such file or folder")]
    Missing { path: String },
    #[error(
        "{path}: unknown data-set format: expected an ImageNet-style folder (<root>/<split>/<class>/*.JPEG), \
         a tar or tar.gz of one, WebDataset shards (key.jpg + key.cls), a CIFAR-10 folder (train.tar.gz/test.tar.gz \
         or data_batch_*.bin), a Fashion-MNIST IDX folder, or staged shards (index.json)"
    )]
    UnknownFormat { path: String },
    #[error("{path}: truncated or corrupt archive after {entries} entries: {detail}")]
    Truncated {
        path: String,
        entries: usize,
        detail: String,
    },
    #[error("{location}: class '{class}' of split {split} holds no images")]
    EmptyClass {
        location: String,
        split: String,
        class: String,
    },
    #[error("{location}: split {split} not found (looked for {looked_for})")]
    MissingSplit {
        location: String,
        split: String,
        looked_for: String,
    },
    #[error("{location}: class '{class}' has {have} images, {want} requested")]
    NotEnoughImages {
        location: String,
        class: String,
        have: usize,
        want: usize,
    },
    #[error("{key}: cannot decode image: {detail}")]
    Decode { key: String, detail: String },
    #[error("{path}: bad {format} data: {detail}")]
    Format {
        path: String,
        format: &'static str,
        detail: String,
    },
    /// More corrupt images than the configured fraction: the stage maps this to exit code 3.
    #[error("{bad} of {total} images are corrupt ({:.2}%), above the allowed {:.2}%", 100.0 * *bad as f64 / (*total).max(1) as f64, 100.0 * max_fraction)]
    TooManyBad {
        bad: usize,
        total: usize,
        max_fraction: f64,
    },
    #[error("shard {key}: checksum mismatch (index says {expected}, object has {actual})")]
    Checksum {
        key: String,
        expected: String,
        actual: String,
    },
    #[error("object store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("tensor: {0}")]
    Tensor(#[from] tch::TchError),
    /// A failure of our own machinery (a crashed reader thread), not of the data: worth a retry.
    #[error("{0}")]
    Internal(String),
}

impl DataError {
    pub(crate) fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DataError {
        let path = path.to_string();
        move |source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                DataError::Missing { path }
            } else {
                DataError::Io { path, source }
            }
        }
    }
}

/// Per-channel normalisation of a data set, applied to images scaled to [0, 1].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normalization {
    /// CIFAR-10 training-set statistics (as in the NB201 and DARTS code bases).
    pub fn cifar10() -> Self {
        Normalization {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }
    /// Fashion-MNIST training-set statistics.
    pub fn fashion_mnist() -> Self {
        Normalization {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }
    /// ImageNet statistics, the convention for any other RGB data set.
    pub fn imagenet() -> Self {
        Normalization {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// Normalises a uint8 `[N, C, H, W]` tensor to float `(x / 255 - mean) / std`.
    pub fn apply(&self, images: &Tensor) -> Tensor {
        let c = self.mean.len() as i64;
        let device = images.device();
        let mean = Tensor::from_slice(&self.mean)
            .to_kind(tch::Kind::Float)
            .view([1, c, 1, 1])
            .to_device(device);
        let std = Tensor::from_slice(&self.std)
            .to_kind(tch::Kind::Float)
            .view([1, c, 1, 1])
            .to_device(device);
        (images.to_kind(tch::Kind::Float) / 255.0 - mean) / std
    }
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

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
    /// Folder or file stems that mean this split (ImageNet calls its test split `val`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Split::Train => &["train"],
            Split::Test => &["test", "val"],
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

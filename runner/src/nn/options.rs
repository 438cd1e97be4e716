//! How to size a network: the options every space's builder reads.
use thiserror::Error;

/// A network option out of range for the space or the data.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("network option `{option}`: {message}")]
pub struct OptionError {
    pub option: &'static str,
    pub message: String,
}

/// Which DARTS evaluation network to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DartsNetKind {
    /// CIFAR network: 3x3 stem, C=36, 20 cells.
    #[default]
    Cifar,
    /// ImageNet network: two-stage stride-4 stem, C=48, 14 cells.
    ImageNet,
}

impl DartsNetKind {
    /// Inputs this large get the ImageNet network (224 px in the papers); smaller ones (CIFAR's
    /// 32, ImageNet16's 16, 64-px downsampled sets) the CIFAR one, whose stem keeps the size.
    pub const IMAGENET_MIN_SIDE: i64 = 128;

    /// The network the DARTS papers build for `side`-pixel inputs.
    pub fn for_input(side: i64) -> DartsNetKind {
        if side >= Self::IMAGENET_MIN_SIDE {
            DartsNetKind::ImageNet
        } else {
            DartsNetKind::Cifar
        }
    }
}

/// How to size a network. Fields left `None` take the space's published default.
#[derive(Debug, Clone, PartialEq)]
pub struct NetOptions {
    /// Number of classes of the classifier.
    pub classes: i64,
    /// Input channels (3 for RGB, 1 for Fashion-MNIST).
    pub input_channels: i64,
    /// Input height and width.
    pub input_size: i64,
    /// Initial channel count C (NB201 16, DARTS CIFAR 36, DARTS ImageNet 48).
    pub width: Option<i64>,
    /// NB201: cells per stage N (5). DARTS: total cells (CIFAR 20, ImageNet 14).
    pub cells: Option<i64>,
    /// NB201: skip `none` edges and ops that cannot reach the cell output (same results,
    /// less work). `false` runs every edge as the benchmark's reference code does.
    pub prune: bool,
    /// DARTS: which evaluation network.
    pub darts_kind: DartsNetKind,
    /// DARTS: build the auxiliary head (its logits go to `Forward::aux_logits` in training).
    pub auxiliary: bool,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            classes: 10,
            input_channels: 3,
            input_size: 32,
            width: None,
            cells: None,
            prune: true,
            darts_kind: DartsNetKind::Cifar,
            auxiliary: false,
        }
    }
}

impl NetOptions {
    /// Options for a data set name as the command line spells it (`cifar10`, `cifar100`,
    /// `imagenet16-120`, `imagenet`, `fashion-mnist`).
    pub fn for_dataset(name: &str) -> Result<NetOptions, OptionError> {
        let base = NetOptions::default();
        let o = match name.to_ascii_lowercase().as_str() {
            "cifar10" | "cifar-10" => base,
            "cifar100" | "cifar-100" => NetOptions {
                classes: 100,
                ..base
            },
            "imagenet16-120" | "imagenet16_120" => NetOptions {
                classes: 120,
                input_size: 16,
                ..base
            },
            "imagenet" => NetOptions {
                classes: 1000,
                input_size: 224,
                darts_kind: DartsNetKind::ImageNet,
                ..base
            },
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => NetOptions {
                input_channels: 1,
                input_size: 28,
                ..base
            },
            other => {
                return Err(OptionError {
                    option: "dataset",
                    message: format!(
                        "unknown data set `{other}`: expected cifar10, cifar100, \
                         imagenet16-120, imagenet or fashion-mnist"
                    ),
                })
            }
        };
        Ok(o)
    }

    pub(crate) fn check_common(&self) -> Result<(), OptionError> {
        let positive = |option: &'static str, v: i64| {
            if v < 1 {
                Err(OptionError {
                    option,
                    message: format!("must be at least 1, got {v}"),
                })
            } else {
                Ok(())
            }
        };
        positive("classes", self.classes)?;
        positive("input_channels", self.input_channels)?;
        positive("input_size", self.input_size)?;
        if let Some(w) = self.width {
            positive("width", w)?;
        }
        if let Some(c) = self.cells {
            positive("cells", c)?;
        }
        Ok(())
    }
}

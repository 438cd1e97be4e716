//! Training recipes: a named preset plus field-by-field overrides.
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A named training recipe; the runner owns the numbers behind each name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RecipePreset {
    /// A few epochs with a cosine schedule: enough to order the top-K candidates.
    Short,
    /// The NAS-Bench-201 recipe (SGD, Nesterov, cosine, 200 epochs).
    Nb201,
    /// The DARTS CIFAR recipe (cutout, auxiliary head, drop-path, cosine, 600 epochs).
    DartsCifar,
    /// The DARTS ImageNet recipe (label smoothing, auxiliary head, a 5-epoch linear warm-up
    /// then cosine decay, gradient clipping, 250 epochs).
    DartsImagenet,
}

/// Learning-rate schedule.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LrSchedule {
    /// Cosine annealing to zero.
    Cosine,
    /// Multiply by a constant factor every epoch.
    Step,
}

/// Fields that replace the preset's values when set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipeOverrides {
    /// Number of epochs (a positive budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("epochs must be positive"))]
    pub epochs: Option<u32>,
    /// Mini-batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("batchSize must be positive"))]
    pub batch_size: Option<u32>,
    /// Initial learning rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("learningRate must be positive"))]
    pub learning_rate: Option<f64>,
    /// L2 weight decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<LrSchedule>,
    /// Label smoothing factor in [0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 0.99))]
    pub label_smoothing: Option<f64>,
    /// Weight of the auxiliary head's loss (0 disables the head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub auxiliary_weight: Option<f64>,
    /// Drop-path probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 0.99))]
    pub drop_path: Option<f64>,
    /// Gradient-norm clipping threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("gradClip must be positive"))]
    pub grad_clip: Option<f64>,
    /// Channel count of the trained network (DARTS evaluation networks are wider than the
    /// scored ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub channels: Option<u32>,
    /// Number of cells of the trained network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub cells: Option<u32>,
}

/// A training recipe: preset plus overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipeSpec {
    /// The preset the overrides start from.
    pub preset: RecipePreset,
    /// Values replacing the preset's.
    #[serde(default)]
    pub overrides: RecipeOverrides,
}

impl RecipeSpec {
    /// The short recipe the top-K candidates are compared with.
    pub fn default_train() -> Self {
        Self {
            preset: RecipePreset::Short,
            overrides: RecipeOverrides::default(),
        }
    }
    /// The final recipe of the winner.
    pub fn default_evaluate() -> Self {
        Self {
            preset: RecipePreset::DartsCifar,
            overrides: RecipeOverrides::default(),
        }
    }
}

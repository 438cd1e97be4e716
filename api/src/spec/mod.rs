//! The parts of a `NASSearch` spec: what data, which space, how many candidates, how to score,
//! select, train and evaluate them, on which resources, and where the artifacts go.
//!
//! Every field carries a doc comment (it becomes the CRD's `description`, so `kubectl explain`
//! reads well) and, where it has one, a default that serde and the CRD schema share.
//! Cross-field rules live on the structs as CEL (`x-kubernetes-validations`) and are mirrored by
//! [`crate::validate`] for clients that have no API server (the runner's `local` command).

mod artifacts;
mod recipe;
mod resources;

pub use artifacts::{ArtifactsSpec, CredentialsSpec, SecretKeyRef};
pub use recipe::{LrSchedule, RecipeOverrides, RecipePreset, RecipeSpec};
pub use resources::{StageResources, StagesResources};

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Number of architectures in the NAS-Bench-201 space (5 operations on 6 edges).
pub const NB201_SPACE_SIZE: u32 = 15_625;

/// The runner container that carries out every stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnerSpec {
    /// Container image holding the `nas-runner` binary, e.g. `registry.example/nas-runner:0.1.0`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Image pull policy of the runner container (Always, IfNotPresent or Never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(Always|IfNotPresent|Never)$"))]
    pub image_pull_policy: Option<String>,
    /// Service account of the runner pods (e.g. one bound to a cloud role when the artifact
    /// credentials come from the environment). Defaults to the namespace's `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::DNS_SUBDOMAIN_PATTERN), length(max = crate::names::DNS_SUBDOMAIN_MAX))]
    pub service_account_name: Option<String>,
}

/// On-disk format of the raw data set.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DatasetFormat {
    /// A folder (or tar) of class folders of JPEG/PNG files, one folder per split (ImageNet style).
    ImageFolder,
    /// CIFAR-10 as train/test tar.gz archives of class folders.
    Cifar10,
    /// Fashion-MNIST IDX files.
    FashionMnist,
    /// WebDataset tar shards of JPEGs with `.cls` labels.
    WebDataset,
}

/// The data set the search runs on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSpec {
    /// Where the raw data set lives: `s3://bucket/key-prefix` (read with the artifact
    /// credentials) or `file:///path` / `/path` on a volume the runner image or node provides.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('s3://') || self.startsWith('file://') || self.startsWith('/')").message("dataset.source must start with s3://, file:// or /"))]
    pub source: String,
    /// Format of the raw files at `source`.
    pub format: DatasetFormat,
    /// Side in pixels of the square images the networks see (images are resized when staged).
    #[serde(default = "default_resolution")]
    #[schemars(range(min = 8, max = 1024))]
    pub resolution: u32,
    /// Names of the splits to read and how much of train to hold out for validation.
    #[serde(default)]
    pub splits: SplitsSpec,
}

fn default_resolution() -> u32 {
    32
}

/// Splits of the data set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SplitsSpec {
    /// Name of the training split (folder or archive stem).
    #[serde(default = "default_train_split")]
    #[schemars(length(min = 1))]
    pub train: String,
    /// Name of the held-out split the final error is measured on.
    #[serde(default = "default_test_split")]
    #[schemars(length(min = 1))]
    pub test: String,
    /// Percentage of the training split held out as the validation set the top-K candidates are
    /// compared on: each image with this probability, by a seeded hash of its position, so every
    /// class gives about this share.
    #[serde(default = "default_validation_percent")]
    #[schemars(range(min = 1, max = 50))]
    pub validation_percent: u32,
}

fn default_train_split() -> String {
    "train".into()
}
fn default_test_split() -> String {
    "test".into()
}
fn default_validation_percent() -> u32 {
    10
}

impl Default for SplitsSpec {
    fn default() -> Self {
        Self {
            train: default_train_split(),
            test: default_test_split(),
            validation_percent: default_validation_percent(),
        }
    }
}

/// A search space.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpaceName {
    /// NAS-Bench-201: a 4-node cell, 5 operations per edge, 15,625 architectures.
    Nb201,
    /// The DARTS space: normal and reduction cells of 4 nodes, 8 operations, two inputs per node.
    Darts,
}

impl SpaceName {
    pub const ALL: [SpaceName; 2] = [SpaceName::Nb201, SpaceName::Darts];

    /// The name in a spec and on the runner's command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceName::Nb201 => "nb201",
            SpaceName::Darts => "darts",
        }
    }
}

/// The search space and the size of the networks built from it while scoring.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpaceSpec {
    /// Which space candidates come from. Immutable once set.
    pub name: SpaceName,
    /// Initial channel count of the networks built for scoring and top-K training. Default: 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub channels: Option<u32>,
    /// Cells per stage (NB201, default 5) or total cells (DARTS, default 8) when scoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub cells: Option<u32>,
}

/// How candidates are drawn from the space.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SamplingStrategy {
    /// Uniformly at random, without repeats.
    #[default]
    Random,
    /// Reserved (NB201 only): every architecture in order, the first `candidates` of them. Not
    /// implemented by this runner version: its score stage fails naming the field (exit 2).
    Exhaustive,
    /// Reserved: regularised evolution (aging) guided by the chosen metrics. Not implemented by
    /// this runner version: its score stage fails naming the field (exit 2).
    Evolutionary,
}

/// Sampling of candidate architectures.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.strategy != 'evolutionary' || !has(self.evolution) || self.evolution.population <= self.candidates").message("sampling.evolution.population must be at most sampling.candidates"))]
#[x_kube(validation = Rule::new("self.shards <= self.candidates").message("sampling.shards must be at most sampling.candidates"))]
pub struct SamplingSpec {
    /// Sampling strategy; this runner version implements `random` only.
    #[serde(default)]
    pub strategy: SamplingStrategy,
    /// Number of candidate architectures to score (a positive budget).
    #[serde(default = "default_candidates")]
    #[x_kube(validation = Rule::new("self > 0").message("sampling.candidates must be positive"))]
    pub candidates: u32,
    /// Seed of every random choice in the search (sampling, initialisation, data order).
    /// Immutable once set: artifacts already written depend on it.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("sampling.seed is immutable"))]
    pub seed: u64,
    /// Number of score shards: the score stage is an Indexed Job of this many completions, shard
    /// i scoring every candidate whose position modulo `shards` is i.
    #[serde(default = "default_shards")]
    #[x_kube(validation = Rule::new("self > 0").message("sampling.shards must be positive"))]
    pub shards: u32,
    /// Options of the evolutionary strategy (reserved; ignored otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evolution: Option<EvolutionSpec>,
}

fn default_candidates() -> u32 {
    1000
}
fn default_shards() -> u32 {
    1
}

/// Regularised-evolution options.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.tournament <= self.population").message("sampling.evolution.tournament must be at most sampling.evolution.population"))]
pub struct EvolutionSpec {
    /// Size of the population kept alive.
    #[serde(default = "default_population")]
    #[schemars(range(min = 2))]
    pub population: u32,
    /// Number of individuals drawn for each tournament.
    #[serde(default = "default_tournament")]
    #[schemars(range(min = 1))]
    pub tournament: u32,
}

fn default_population() -> u32 {
    64
}
fn default_tournament() -> u32 {
    16
}

/// A metric the score stage computes for every candidate.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The paper's light-weight training-based metric: angle of the classifier weights after a
    /// short training, fused with the final training loss by ranks.
    AngleLoss,
    /// Number of trainable parameters.
    Params,
    /// Multiply-adds of one forward pass of one image.
    Flops,
    /// Norm of the gradient at initialisation.
    GradNorm,
    /// SNIP saliency.
    Snip,
    /// GraSP saliency.
    Grasp,
    /// Fisher information saliency.
    Fisher,
    /// Jacobian covariance score.
    JacobCov,
    /// SynFlow saliency.
    Synflow,
    /// NASWOT: log-determinant of the binary activation-code kernel.
    Naswot,
    /// Condition number of the neural tangent kernel.
    NtkCond,
    /// Number of linear regions.
    LinearRegions,
    /// Zen-score.
    Zen,
}

impl Metric {
    /// Every metric; the runner's registry holds exactly these (a test checks it).
    pub const ALL: [Metric; 13] = [
        Metric::Params,
        Metric::Flops,
        Metric::GradNorm,
        Metric::Snip,
        Metric::Grasp,
        Metric::Fisher,
        Metric::JacobCov,
        Metric::Synflow,
        Metric::Naswot,
        Metric::NtkCond,
        Metric::LinearRegions,
        Metric::Zen,
        Metric::AngleLoss,
    ];

    /// The name used on the runner's command line and in score records.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::AngleLoss => "angle_loss",
            Metric::Params => "params",
            Metric::Flops => "flops",
            Metric::GradNorm => "grad_norm",
            Metric::Snip => "snip",
            Metric::Grasp => "grasp",
            Metric::Fisher => "fisher",
            Metric::JacobCov => "jacob_cov",
            Metric::Synflow => "synflow",
            Metric::Naswot => "naswot",
            Metric::NtkCond => "ntk_cond",
            Metric::LinearRegions => "linear_regions",
            Metric::Zen => "zen",
        }
    }
}

/// Which metrics score the candidates, and how.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Metrics to compute, without repeats. Default: the paper's `angle_loss` with `params`
    /// (#Param), whose ranks add up to the search rank.
    #[serde(default = "default_metric_names")]
    #[schemars(length(min = 1))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub names: Vec<Metric>,
    /// Mini-batch size the data-dependent metrics use.
    #[serde(default = "default_metric_batch")]
    #[schemars(range(min = 1, max = 4096))]
    pub batch_size: u32,
    /// Training steps of `angle_loss`'s short training (the paper: 50).
    #[serde(default = "default_angle_steps")]
    #[schemars(range(min = 1, max = 100000))]
    pub angle_loss_steps: u32,
    /// Repetitions (different seeds) averaged per metric, for metrics that are noisy.
    #[serde(default = "default_repeats")]
    #[schemars(range(min = 1, max = 16))]
    pub repeats: u32,
}

fn default_metric_names() -> Vec<Metric> {
    vec![Metric::AngleLoss, Metric::Params]
}
fn default_metric_batch() -> u32 {
    64
}
/// The paper's 50-step training.
fn default_angle_steps() -> u32 {
    50
}
fn default_repeats() -> u32 {
    1
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            names: default_metric_names(),
            batch_size: default_metric_batch(),
            angle_loss_steps: default_angle_steps(),
            repeats: default_repeats(),
        }
    }
}

/// Hard limits a candidate must meet to be selected.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintsSpec {
    /// Largest number of parameters allowed (positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("constraints.maxParams must be positive"))]
    pub max_params: Option<u64>,
    /// Largest number of FLOPs for one image at the search's resolution allowed (positive), as
    /// each space's published numbers count them (`nas-runner inspect` prints the convention
    /// and the count of any architecture): for `nb201`, multiply-adds of convolutions and linear
    /// layers with their bias adds (the NAS-Bench-201 tables); for `darts`, that plus one per
    /// ReLU output and pooling input element and two per BatchNorm input element (ptflops,
    /// whose totals the P-DARTS and PC-DARTS papers report: 557M and 597M on ImageNet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("constraints.maxFlops must be positive"))]
    pub max_flops: Option<u64>,
}

/// How the candidates' metric values become one ranking.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RankRule {
    /// Sum of each listed metric's rank (the paper's search rank with the default metrics).
    #[default]
    RankSum,
    /// Rank by the first listed metric alone.
    First,
}

/// Selection of the candidates that go on to training.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectionSpec {
    /// Number of best-ranked candidates trained on the real data set (a positive budget, at
    /// most `sampling.candidates`).
    #[serde(default = "default_top_k", rename = "topK")]
    #[x_kube(validation = Rule::new("self > 0 && self <= 100").message("selection.topK must be between 1 and 100"))]
    pub top_k: u32,
    /// Ranking rule.
    #[serde(default)]
    pub rank: RankRule,
}

fn default_top_k() -> u32 {
    5
}

impl Default for SelectionSpec {
    fn default() -> Self {
        Self {
            top_k: default_top_k(),
            rank: RankRule::default(),
        }
    }
}

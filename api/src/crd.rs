//! The `NASSearch` custom resource (`nas.example.dev/v1alpha1`, namespaced, short name `nas`):
//! the spec users `kubectl apply`, with its CEL rules, and the bounded status the operator keeps.
//!
//! The CRD YAML is generated from these types (`nas-operator crd`); the spec's parts live in
//! [`crate::spec`].
// Each `printcolumn(...)` in the kube attribute repeats keys such as `type_`, which clippy
// mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::contract::Stage;
use crate::spec::{
    ArtifactsSpec, ConstraintsSpec, DatasetSpec, MetricsSpec, RecipeSpec, RunnerSpec, SamplingSpec,
    SelectionSpec, SpaceSpec, StagesResources,
};

/// API group of the resource.
pub const GROUP: &str = "nas.example.dev";
/// API version of the resource.
pub const VERSION: &str = "v1alpha1";
/// Longest architecture string in the status (the schema's bound; longer ones are cut).
pub const ARCH_MAX_CHARS: usize = 512;
/// At most this many top-K entries are kept in the status, whatever `selection.topK` is.
pub const STATUS_TOP_K_MAX: usize = 20;
/// Largest serialized status the operator writes, whatever the search's size (bytes): the
/// status is read by every `kubectl get` and watch, and shard or candidate counts must not
/// grow it.
pub const STATUS_MAX_BYTES: usize = 16 * 1024;

/// A neural architecture search: sample candidates from a space, score them with cheap metrics,
/// train the best few, evaluate the winner, and report.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nas.example.dev",
    version = "v1alpha1",
    kind = "NASSearch",
    singular = "nassearch",
    plural = "nassearches",
    shortname = "nas",
    category = "nas",
    namespaced,
    status = "NASSearchStatus",
    derive = "PartialEq",
    doc = "A neural architecture search carried out by batch Jobs running nas-runner.",
    // The name is a label value on every Job and pod of the search.
    validation = Rule::new("size(self.metadata.name) <= 63").message(crate::names::SEARCH_NAME_MESSAGE),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Phase of the search"
    ),
    printcolumn(
        name = "Stage",
        type_ = "string",
        json_path = ".status.stage",
        description = "Current stage"
    ),
    printcolumn(
        name = "Scored",
        type_ = "integer",
        json_path = ".status.candidatesScored",
        description = "Candidates scored"
    ),
    printcolumn(
        name = "Best",
        type_ = "string",
        json_path = ".status.best.arch",
        description = "Best architecture so far"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Results",
        type_ = "string",
        json_path = ".status.resultsUri",
        description = "Where the results are",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.selection.topK <= self.sampling.candidates").message("selection.topK must be at most sampling.candidates"))]
#[x_kube(validation = Rule::new("self.sampling.strategy != 'exhaustive' || (self.space.name == 'nb201' && self.sampling.candidates <= 15625)").message("sampling.strategy exhaustive needs space.name nb201 and at most 15625 candidates"))]
pub struct NASSearchSpec {
    /// The runner container.
    pub runner: RunnerSpec,
    /// The data set.
    pub dataset: DatasetSpec,
    /// The search space. Immutable once set.
    #[x_kube(validation = Rule::new("self == oldSelf").message("space is immutable"))]
    pub space: SpaceSpec,
    /// How candidates are sampled.
    #[serde(default = "default_sampling")]
    pub sampling: SamplingSpec,
    /// Metrics that score the candidates.
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// Limits a selected candidate must meet.
    #[serde(default)]
    pub constraints: ConstraintsSpec,
    /// How many candidates go on to training, and how they are ranked.
    #[serde(default)]
    pub selection: SelectionSpec,
    /// Recipe of the short training that compares the top K.
    #[serde(default = "RecipeSpec::default_train")]
    pub train: RecipeSpec,
    /// Recipe of the winner's final training and evaluation.
    #[serde(default = "RecipeSpec::default_evaluate")]
    pub evaluate: RecipeSpec,
    /// Resources and scheduling of each stage's pods.
    #[serde(default)]
    pub resources: StagesResources,
    /// Where artifacts are written.
    pub artifacts: ArtifactsSpec,
    /// Kueue LocalQueue the stage Jobs are submitted to; Kueue then owns their `suspend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::LABEL_VALUE_PATTERN), length(max = crate::names::LABEL_VALUE_MAX))]
    pub queue_name: Option<String>,
    /// Pause the search: the running Job is suspended (unless Kueue manages it) and no new stage
    /// starts until this is false again.
    #[serde(default)]
    pub suspend: bool,
    /// Seconds after a stage's Job finishes before Kubernetes deletes it (and its pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Delete the search's artifacts (through a runner Job) when the resource is deleted.
    #[serde(default)]
    pub delete_artifacts_on_deletion: bool,
}

fn default_sampling() -> SamplingSpec {
    SamplingSpec {
        strategy: Default::default(),
        candidates: 1000,
        seed: 0,
        shards: 1,
        evolution: None,
    }
}

/// Schema of [`Stage`] (which lives in the contract module, free of schema concerns).
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // only its schema is used
enum StageName {
    StageData,
    Score,
    Select,
    Train,
    Evaluate,
    Report,
}

/// Coarse state of a search.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Phase {
    /// Accepted, no stage started yet.
    #[default]
    Pending,
    /// A stage is running.
    Running,
    /// Suspended by the user.
    Suspended,
    /// Every stage done.
    Succeeded,
    /// A stage failed beyond its retries, or the spec is invalid.
    Failed,
}

/// State of one stage.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum StageState {
    /// Not started.
    #[default]
    Pending,
    /// Its Job exists and has not finished.
    Running,
    /// Done (possibly with tolerated failed indexes).
    Succeeded,
    /// Failed beyond its retries.
    Failed,
}

/// Progress of one stage, from its Job's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    /// Which stage.
    #[schemars(with = "StageName")]
    pub stage: Stage,
    /// State of the stage.
    pub state: StageState,
    /// Name of the stage's Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Indexes (or pods) the stage needs to complete.
    #[serde(default)]
    pub total: i32,
    /// Indexes (or pods) completed.
    #[serde(default)]
    pub succeeded: i32,
    /// Indexes (or pods) failed.
    #[serde(default)]
    pub failed: i32,
    /// Pods running.
    #[serde(default)]
    pub active: i32,
    /// When the Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the stage finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// One candidate in the status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateSummary {
    /// Position of the candidate among the sampled ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The architecture (NB201 string or DARTS genotype), at most 512 characters.
    #[schemars(length(max = ARCH_MAX_CHARS))]
    pub arch: String,
    /// Search rank (1 is best).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    /// Number of parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<u64>,
    /// Multiply-adds for one image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops: Option<u64>,
    /// Validation accuracy after the short training (percent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Top-1 test error of the final evaluation (percent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1_error: Option<f64>,
    /// Top-5 test error of the final evaluation (percent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top5_error: Option<f64>,
}

/// Observed state of a search, bounded whatever the number of candidates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NASSearchStatus {
    /// Generation of the spec this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions: Accepted, Progressing, Succeeded, Failed, Suspended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Coarse state.
    #[serde(default)]
    pub phase: Phase,
    /// Current (or last) stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<StageName>")]
    pub stage: Option<Stage>,
    /// Hash of the spec the stage Jobs were built from; a new hash restarts the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// Progress of each stage started so far (at most one entry per stage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6))]
    pub stages: Vec<StageStatus>,
    /// Candidates scored so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_scored: Option<u64>,
    /// Best candidate so far: best-ranked after select, best validated after train, evaluated
    /// after evaluate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<CandidateSummary>,
    /// The selected candidates, best first (at most 20, whatever `selection.topK`).
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "topK")]
    #[schemars(length(max = 20))]
    pub top_k: Vec<CandidateSummary>,
    /// Prefix URI of the search's artifacts (`s3://bucket/prefix/namespace/name/uid/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_uri: Option<String>,
    /// URI of the results (`summary.json`), once the report is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_uri: Option<String>,
}

impl StageStatus {
    /// A stage that has not started.
    pub fn new(stage: Stage) -> Self {
        Self {
            stage,
            state: StageState::Pending,
            job_name: None,
            total: 0,
            succeeded: 0,
            failed: 0,
            active: 0,
            start_time: None,
            completion_time: None,
        }
    }
}

impl NASSearchStatus {
    /// The condition of type `type_`, if set.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether condition `type_` is `True`.
    pub fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }

    /// The entry of `stage`, if the stage started.
    pub fn stage_status(&self, stage: Stage) -> Option<&StageStatus> {
        self.stages.iter().find(|s| s.stage == stage)
    }
}

/// Condition types the operator sets.
pub mod condition {
    /// The spec is valid and the operator works on it.
    pub const ACCEPTED: &str = "Accepted";
    /// A stage is running or about to start.
    pub const PROGRESSING: &str = "Progressing";
    /// Every stage is done; `kubectl wait --for=condition=Succeeded` returns.
    pub const SUCCEEDED: &str = "Succeeded";
    /// The search failed.
    pub const FAILED: &str = "Failed";
    /// The search is suspended.
    pub const SUSPENDED: &str = "Suspended";
}

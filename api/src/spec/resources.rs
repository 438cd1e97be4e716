//! Per-stage resources and scheduling of the runner pods.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::contract::Stage;

/// Resources and scheduling of one stage's pods.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageResources {
    /// GPUs per pod (`nvidia.com/gpu`); 0 runs on CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub gpus: Option<u32>,
    /// CPU request and limit per pod, e.g. `4` or `3500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory request and limit per pod, e.g. `16Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the pods (e.g. for tainted GPU nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Priority class of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::DNS_SUBDOMAIN_PATTERN), length(max = crate::names::DNS_SUBDOMAIN_MAX))]
    pub priority_class_name: Option<String>,
    /// Pods of this stage running at once (Indexed stages: score and train).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("parallelism must be positive"))]
    pub parallelism: Option<i32>,
    /// Retries of each index (Indexed stages) or of the Job (other stages) after a transient
    /// failure. Default: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub retries_per_index: Option<i32>,
    /// Indexes (score shards, trained candidates) allowed to fail before the stage fails; the
    /// search goes on with the others. Default: none may fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_failed_indexes: Option<i32>,
    /// Time limit of the stage's Job in seconds (a positive budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("activeDeadlineSeconds must be positive"))]
    pub active_deadline_seconds: Option<i64>,
}

/// Resources of each stage; a stage without an entry gets one CPU pod with no limits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StagesResources {
    /// Staging the data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_data: Option<StageResources>,
    /// Scoring candidates (Indexed: one index per shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<StageResources>,
    /// Merging, constraining and ranking the scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<StageResources>,
    /// Short training of the top K (Indexed: one index per candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<StageResources>,
    /// Final training and evaluation of the winner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<StageResources>,
    /// Writing the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<StageResources>,
}

impl StagesResources {
    /// The entry of `stage`, where the spec has one.
    pub fn for_stage(&self, stage: Stage) -> Option<&StageResources> {
        match stage {
            Stage::StageData => self.stage_data.as_ref(),
            Stage::Score => self.score.as_ref(),
            Stage::Select => self.select.as_ref(),
            Stage::Train => self.train.as_ref(),
            Stage::Evaluate => self.evaluate.as_ref(),
            Stage::Report => self.report.as_ref(),
        }
    }
}

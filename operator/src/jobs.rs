//! Building the Kubernetes objects of a search: one batch Job per stage (Indexed for score and
//! train) and the ConfigMap holding the resolved spec.
//!
//! **Where the resolved spec goes.** The operator has no object-store credentials, so it cannot
//! write `spec.json` to the store itself. It writes the resolved spec into a ConfigMap
//! `{search}-spec-{key}` (owned by the search, immutable, one per spec hash; [`name_key`]) that every runner
//! pod mounts read-only at [`SPEC_MOUNT_DIR`]; each Job runs
//! `nas-runner <stage> --spec /etc/nas/spec/spec.json`. The first stage (stage-data) copies it to
//! `{artifacts root}/spec.json` in the store, where the layout says it lives.
//!
//! **Failure policy.** Runner exit codes map onto the Job's podFailurePolicy: a pod disruption
//! and exit 143 (the runner stopped on SIGTERM, as when its Job is suspended, finished work
//! kept) are ignored (not counted against retries), exit 2 (invalid configuration) fails the Job, exit 3
//! (this shard or candidate cannot be done) fails the index, anything else is retried up to
//! `retriesPerIndex` times per index (`backoffLimitPerIndex`). Replacement pods start only once
//! the old one has fully failed (`podReplacementPolicy: Failed`), so two pods never write the
//! same shard at once.
//!
//! **Kueue.** With `queueName` set, Jobs carry the `kueue.x-k8s.io/queue-name` label and the
//! operator never sets or patches their `suspend`: Kueue owns it.
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use nas_api::contract::{exit_code, Stage, TERMINATION_GRACE_SECONDS, TERMINATION_MESSAGE_PATH};
use nas_api::crd::NASSearch;
use nas_api::resolved::ResolvedSpec;
use nas_api::spec::StageResources;

/// Label holding the search's name on every object the operator creates.
pub const LABEL_SEARCH: &str = "nas.example.dev/search";
/// Label holding the stage (or `cleanup`) of a Job.
pub const LABEL_STAGE: &str = "nas.example.dev/stage";
/// Label holding the spec hash a Job was built from.
pub const LABEL_SPEC_HASH: &str = "nas.example.dev/spec-hash";
/// Kueue's queue label.
pub const LABEL_KUEUE_QUEUE: &str = "kueue.x-k8s.io/queue-name";
/// Name of the runner container.
pub const RUNNER_CONTAINER: &str = "runner";
/// Where the spec ConfigMap is mounted in runner pods.
pub const SPEC_MOUNT_DIR: &str = "/etc/nas/spec";
/// Key of the resolved spec in the ConfigMap.
pub use nas_api::layout::key::SPEC as SPEC_KEY;
/// Default retries of each index (or of the Job, for non-indexed stages).
pub const DEFAULT_RETRIES: i32 = 2;
/// The Job that deletes a search's artifacts when the search is deleted (finalizer).
pub const CLEANUP: &str = "cleanup";
/// Annotation of the cleanup Job naming the search's UID: that Job is not owned by the search
/// (a foreground deletion would have the garbage collector delete it first), so this is how the
/// operator knows it.
pub const ANNOTATION_SEARCH_UID: &str = "nas.example.dev/search-uid";
/// How long a finished cleanup Job stays (it has no owner to take it along).
pub const CLEANUP_TTL_SECONDS: i32 = 600;
/// Value of `app.kubernetes.io/managed-by`.
pub const MANAGER: &str = "nas-operator";

/// What a Job does: one stage of the pipeline, or the artifact cleanup on deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A pipeline stage.
    Stage(Stage),
    /// Deleting the artifacts (`nas-runner cleanup`).
    Cleanup,
}

impl JobKind {
    /// Runner subcommand and name part.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Stage(s) => s.as_str(),
            JobKind::Cleanup => CLEANUP,
        }
    }

    /// Parses a [`LABEL_STAGE`] value.
    pub fn parse(s: &str) -> Option<Self> {
        if s == CLEANUP {
            return Some(JobKind::Cleanup);
        }
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .map(JobKind::Stage)
    }

    /// Indexed stages run one pod per index (score shard, trained candidate).
    pub fn indexed(self) -> bool {
        matches!(self, JobKind::Stage(s) if s.is_indexed())
    }
}

/// Object names must be DNS labels (63 characters) and Indexed pods' hostnames add `-{index}`:
/// the search's part is cut so the whole name stays within 52 characters.
const NAME_MAX: usize = 52;

fn name_with(search: &str, middle: &str, hash: &str) -> String {
    let short = &hash[..hash.len().min(8)];
    let room = NAME_MAX - middle.len() - short.len() - 2;
    let mut base: String = search.chars().take(room).collect();
    while base.ends_with('-') || base.ends_with('.') {
        base.pop();
    }
    format!("{base}-{middle}-{short}")
}

/// The part of a search's object names that tells them apart: a hash of the search's UID and
/// its spec hash. The spec hash alone would give two searches whose names share their first 37
/// characters, and whose specs are equal, the same Job and ConfigMap names.
pub fn name_key(resolved: &ResolvedSpec) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}/{}", resolved.uid, resolved.spec_hash).as_bytes());
    hex::encode(&digest[..4])
}

/// Name of a search's Job for `kind`; `key` is [`name_key`].
pub fn job_name(search: &str, kind: JobKind, key: &str) -> String {
    name_with(search, kind.as_str(), key)
}

/// Name of the ConfigMap holding the resolved spec; `key` is [`name_key`].
pub fn spec_configmap_name(search: &str, key: &str) -> String {
    name_with(search, "spec", key)
}

/// Labels of every object made for `search`.
pub fn common_labels(search: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "nas-runner".into()),
        ("app.kubernetes.io/instance".into(), search.to_string()),
        ("app.kubernetes.io/part-of".into(), "nas".into()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
        (LABEL_SEARCH.into(), search.to_string()),
    ])
}

fn owner_ref(search: &NASSearch) -> OwnerReference {
    // A search read from the API server always has a name and UID; controller_owner_ref only
    // returns None without them, and the planner has validated them by then.
    search.controller_owner_ref(&()).unwrap_or_default()
}

/// The ConfigMap holding `resolved` as `spec.json`.
pub fn spec_configmap(search: &NASSearch, resolved: &ResolvedSpec) -> ConfigMap {
    let mut labels = common_labels(&resolved.name);
    labels.insert(LABEL_SPEC_HASH.into(), resolved.spec_hash.clone());
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(spec_configmap_name(&resolved.name, &name_key(resolved))),
            namespace: Some(resolved.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner_ref(search)]),
            ..Default::default()
        },
        data: Some(spec_data(resolved)),
        immutable: Some(true),
        ..Default::default()
    }
}

/// What a spec ConfigMap holds: the resolved spec in the form the Jobs receive.
fn spec_data(resolved: &ResolvedSpec) -> BTreeMap<String, String> {
    BTreeMap::from([(SPEC_KEY.to_string(), resolved.for_jobs().to_json())])
}

/// The ConfigMap the cleanup Job mounts: named like that Job and owned by it (`job_uid`), so it
/// outlives a foreground deletion of the search and goes with the Job.
pub fn cleanup_configmap(resolved: &ResolvedSpec, job_name: &str, job_uid: &str) -> ConfigMap {
    let mut labels = common_labels(&resolved.name);
    labels.insert(LABEL_SPEC_HASH.into(), resolved.spec_hash.clone());
    labels.insert(LABEL_STAGE.into(), CLEANUP.into());
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(job_name.to_string()),
            namespace: Some(resolved.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: job_name.to_string(),
                uid: job_uid.to_string(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..Default::default()
        },
        data: Some(spec_data(resolved)),
        immutable: Some(true),
        ..Default::default()
    }
}

fn stage_resources(resolved: &ResolvedSpec, kind: JobKind) -> StageResources {
    let stage = match kind {
        JobKind::Stage(stage) => stage,
        // The cleanup runs with the report's resources.
        JobKind::Cleanup => Stage::Report,
    };
    resolved
        .spec
        .resources
        .for_stage(stage)
        .cloned()
        .unwrap_or_default()
}

/// Number of indexes (completions) of a stage's Job.
pub fn completions(resolved: &ResolvedSpec, kind: JobKind) -> i32 {
    let n = match kind {
        JobKind::Stage(stage) => stage.units(&resolved.spec),
        JobKind::Cleanup => 1,
    };
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Indexes of `kind` allowed to fail while the search goes on (0 for non-indexed stages).
pub fn tolerated_failed_indexes(resolved: &ResolvedSpec, kind: JobKind) -> i32 {
    if kind.indexed() {
        stage_resources(resolved, kind)
            .max_failed_indexes
            .unwrap_or(0)
    } else {
        0
    }
}

fn failure_policy(indexed: bool) -> PodFailurePolicy {
    let on_exit = |action: &str, code: i32| PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: Some(RUNNER_CONTAINER.into()),
            operator: "In".into(),
            values: vec![code],
        }),
        on_pod_conditions: None,
    };
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_exit_codes: None,
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".into(),
                    status: Some("True".into()),
                }]),
            },
            // Stopped on request (suspended, preempted, drained) with its work kept.
            on_exit("Ignore", exit_code::INTERRUPTED),
            on_exit("FailJob", exit_code::INVALID_CONFIG),
            // FailIndex needs backoffLimitPerIndex, which only Indexed Jobs have.
            on_exit(
                if indexed { "FailIndex" } else { "FailJob" },
                exit_code::UNDOABLE,
            ),
        ],
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn pod_env(resolved: &ResolvedSpec, kind: JobKind) -> Vec<EnvVar> {
    let a = &resolved.spec.artifacts;
    let mut out = vec![
        env("NAS_STAGE", kind.as_str()),
        env("NAS_SEARCH", resolved.name.clone()),
        env("NAS_ARTIFACTS_ROOT", resolved.artifacts_root.clone()),
    ];
    if let Some(r) = &a.region {
        out.push(env("AWS_REGION", r.clone()));
    }
    if let Some(e) = &a.endpoint {
        out.push(env("AWS_ENDPOINT_URL", e.clone()));
    }
    if let Some(s) = &a.credentials.secret_ref {
        // The operator only names the Secret; the kubelet resolves it for the pod.
        let from = |key: &str| EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: s.name.clone(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        };
        out.push(EnvVar {
            name: "AWS_ACCESS_KEY_ID".into(),
            value: None,
            value_from: Some(from(&s.access_key_id_key)),
        });
        out.push(EnvVar {
            name: "AWS_SECRET_ACCESS_KEY".into(),
            value: None,
            value_from: Some(from(&s.secret_access_key_key)),
        });
    }
    out
}

fn container_resources(r: &StageResources) -> Option<ResourceRequirements> {
    let mut map = BTreeMap::new();
    if let Some(g) = r.gpus.filter(|g| *g > 0) {
        map.insert("nvidia.com/gpu".to_string(), Quantity(g.to_string()));
    }
    if let Some(c) = &r.cpu {
        map.insert("cpu".to_string(), c.clone());
    }
    if let Some(m) = &r.memory {
        map.insert("memory".to_string(), m.clone());
    }
    (!map.is_empty()).then(|| ResourceRequirements {
        requests: Some(map.clone()),
        limits: Some(map),
        ..Default::default()
    })
}

/// The Job of `kind` for a search. `resolved` must come from `search`.
pub fn build_job(search: &NASSearch, resolved: &ResolvedSpec, kind: JobKind) -> Job {
    let spec = &resolved.spec;
    let res = stage_resources(resolved, kind);
    let name = job_name(&resolved.name, kind, &name_key(resolved));
    let mut labels = common_labels(&resolved.name);
    labels.insert("app.kubernetes.io/component".into(), kind.as_str().into());
    labels.insert(LABEL_STAGE.into(), kind.as_str().into());
    labels.insert(LABEL_SPEC_HASH.into(), resolved.spec_hash.clone());
    let pod_labels = labels.clone();
    if let Some(q) = &spec.queue_name {
        labels.insert(LABEL_KUEUE_QUEUE.into(), q.clone());
    }

    let indexed = kind.indexed();
    let n = completions(resolved, kind);
    let retries = res.retries_per_index.unwrap_or(DEFAULT_RETRIES);
    let spec_path = format!("{SPEC_MOUNT_DIR}/{SPEC_KEY}");
    let container = Container {
        name: RUNNER_CONTAINER.into(),
        image: Some(spec.runner.image.clone()),
        image_pull_policy: spec.runner.image_pull_policy.clone(),
        command: Some(vec![
            "nas-runner".into(),
            kind.as_str().into(),
            "--spec".into(),
            spec_path,
        ]),
        env: Some(pod_env(resolved, kind)),
        resources: container_resources(&res),
        termination_message_path: Some(TERMINATION_MESSAGE_PATH.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        // The `restricted` Pod Security Standard, which API servers enforce per namespace.
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "spec".into(),
                mount_path: SPEC_MOUNT_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "scratch".into(),
                mount_path: "/tmp".into(),
                ..Default::default()
            },
            VolumeMount {
                name: "dshm".into(),
                mount_path: "/dev/shm".into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let cleanup = kind == JobKind::Cleanup;
    let spec_map = if cleanup {
        name.clone()
    } else {
        spec_configmap_name(&resolved.name, &name_key(resolved))
    };
    let volumes = vec![
        Volume {
            name: "spec".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: spec_map,
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "dshm".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];

    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(resolved.namespace.clone()),
            labels: Some(labels),
            // The cleanup Job runs while the search is being deleted: owned by it, a foreground
            // deletion would delete it before it ran.
            owner_references: (!cleanup).then(|| vec![owner_ref(search)]),
            annotations: cleanup.then(|| {
                BTreeMap::from([(ANNOTATION_SEARCH_UID.to_string(), resolved.uid.clone())])
            }),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completions: Some(n),
            parallelism: Some(res.parallelism.unwrap_or(n).min(n)),
            completion_mode: Some(if indexed { "Indexed" } else { "NonIndexed" }.into()),
            backoff_limit_per_index: indexed.then_some(retries),
            max_failed_indexes: indexed.then(|| res.max_failed_indexes.unwrap_or(0).min(n)),
            backoff_limit: if indexed { None } else { Some(retries) },
            pod_failure_policy: Some(failure_policy(indexed)),
            pod_replacement_policy: Some("Failed".into()),
            ttl_seconds_after_finished: if cleanup {
                Some(
                    spec.ttl_seconds_after_finished
                        .unwrap_or(CLEANUP_TTL_SECONDS),
                )
            } else {
                spec.ttl_seconds_after_finished
            },
            active_deadline_seconds: res.active_deadline_seconds,
            // Kueue owns `suspend` of the Jobs it manages: leave the field out entirely.
            suspend: if spec.queue_name.is_some() {
                None
            } else {
                Some(spec.suspend)
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    // The runner's stop watchdog fits inside it (`nas_api::contract`).
                    termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
                    service_account_name: spec.runner.service_account_name.clone(),
                    containers: vec![container],
                    volumes: Some(volumes),
                    node_selector: (!res.node_selector.is_empty())
                        .then(|| res.node_selector.clone()),
                    tolerations: (!res.tolerations.is_empty()).then(|| res.tolerations.clone()),
                    priority_class_name: res.priority_class_name.clone(),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

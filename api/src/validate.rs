//! Client-side validation of a `NASSearch` spec: the same rules the CRD's schema and CEL rules
//! enforce on the API server, for clients without one (the runner's `local` command) and for the
//! operator, which must not hot-loop on a spec that got past an older schema.
//!
//! Every error names the offending field by its JSON path (`spec.selection.topK`).
use std::collections::BTreeSet;

use crate::crd::NASSearchSpec;
use crate::names;
use crate::spec::{RecipeSpec, SamplingStrategy, SpaceName, StageResources, NB201_SPACE_SIZE};

/// One rule a spec breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.selection.topK`.
    pub path: String,
    /// What was expected.
    pub message: String,
}

impl FieldError {
    /// An error of the field at `path` (a JSON path such as `spec.selection.topK`).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Broken rules as one message: "path: what was expected; ...".
pub fn describe(errs: &[FieldError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks every rule of a new spec; returns all broken ones.
pub fn validate(spec: &NASSearchSpec) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut check = |ok: bool, path: &str, message: &str| {
        if !ok {
            errs.push(FieldError::new(path, message));
        }
    };

    check(
        !spec.runner.image.is_empty(),
        "spec.runner.image",
        "must not be empty",
    );
    if let Some(sa) = &spec.runner.service_account_name {
        check(
            names::is_dns_subdomain(sa),
            "spec.runner.serviceAccountName",
            names::DNS_SUBDOMAIN_MESSAGE,
        );
    }
    if let Some(q) = &spec.queue_name {
        check(
            names::is_label_value(q),
            "spec.queueName",
            names::LABEL_VALUE_MESSAGE,
        );
    }
    if let Some(p) = &spec.runner.image_pull_policy {
        check(
            matches!(p.as_str(), "Always" | "IfNotPresent" | "Never"),
            "spec.runner.imagePullPolicy",
            "must be Always, IfNotPresent or Never",
        );
    }

    let d = &spec.dataset;
    check(
        d.source.starts_with("s3://")
            || d.source.starts_with("file://")
            || d.source.starts_with('/'),
        "spec.dataset.source",
        "dataset.source must start with s3://, file:// or /",
    );
    check(
        d.source.len() <= 2048,
        "spec.dataset.source",
        "must be at most 2048 characters",
    );
    check(
        (8..=1024).contains(&d.resolution),
        "spec.dataset.resolution",
        "must be between 8 and 1024",
    );
    check(
        !d.splits.train.is_empty(),
        "spec.dataset.splits.train",
        "must not be empty",
    );
    check(
        !d.splits.test.is_empty(),
        "spec.dataset.splits.test",
        "must not be empty",
    );
    check(
        (1..=50).contains(&d.splits.validation_percent),
        "spec.dataset.splits.validationPercent",
        "must be between 1 and 50",
    );

    if let Some(c) = spec.space.channels {
        check(
            (1..=1024).contains(&c),
            "spec.space.channels",
            "must be between 1 and 1024",
        );
    }
    if let Some(c) = spec.space.cells {
        check(
            (1..=64).contains(&c),
            "spec.space.cells",
            "must be between 1 and 64",
        );
    }

    let s = &spec.sampling;
    check(
        s.candidates > 0,
        "spec.sampling.candidates",
        "sampling.candidates must be positive",
    );
    check(
        s.shards > 0,
        "spec.sampling.shards",
        "sampling.shards must be positive",
    );
    check(
        s.shards <= s.candidates,
        "spec.sampling",
        "sampling.shards must be at most sampling.candidates",
    );
    check(
        s.strategy != SamplingStrategy::Exhaustive
            || (spec.space.name == SpaceName::Nb201 && s.candidates <= NB201_SPACE_SIZE),
        "spec",
        "sampling.strategy exhaustive needs space.name nb201 and at most 15625 candidates",
    );
    if let Some(e) = &s.evolution {
        check(
            e.population >= 2,
            "spec.sampling.evolution.population",
            "must be at least 2",
        );
        check(
            e.tournament >= 1,
            "spec.sampling.evolution.tournament",
            "must be at least 1",
        );
        check(
            e.tournament <= e.population,
            "spec.sampling.evolution",
            "sampling.evolution.tournament must be at most sampling.evolution.population",
        );
        check(
            s.strategy != SamplingStrategy::Evolutionary || e.population <= s.candidates,
            "spec.sampling",
            "sampling.evolution.population must be at most sampling.candidates",
        );
    }

    let m = &spec.metrics;
    check(
        !m.names.is_empty(),
        "spec.metrics.names",
        "must list at least one metric",
    );
    let unique: BTreeSet<_> = m.names.iter().collect();
    check(
        unique.len() == m.names.len(),
        "spec.metrics.names",
        "must not repeat a metric",
    );
    check(
        (1..=4096).contains(&m.batch_size),
        "spec.metrics.batchSize",
        "must be between 1 and 4096",
    );
    check(
        (1..=100_000).contains(&m.angle_loss_steps),
        "spec.metrics.angleLossSteps",
        "must be between 1 and 100000",
    );
    check(
        (1..=16).contains(&m.repeats),
        "spec.metrics.repeats",
        "must be between 1 and 16",
    );

    if let Some(v) = spec.constraints.max_params {
        check(
            v > 0,
            "spec.constraints.maxParams",
            "constraints.maxParams must be positive",
        );
    }
    if let Some(v) = spec.constraints.max_flops {
        check(
            v > 0,
            "spec.constraints.maxFlops",
            "constraints.maxFlops must be positive",
        );
    }

    let k = spec.selection.top_k;
    check(
        k > 0 && k <= 100,
        "spec.selection.topK",
        "selection.topK must be between 1 and 100",
    );
    check(
        k <= s.candidates,
        "spec",
        "selection.topK must be at most sampling.candidates",
    );

    recipe(&spec.train, "spec.train", &mut errs);
    recipe(&spec.evaluate, "spec.evaluate", &mut errs);

    let r = &spec.resources;
    for (name, res) in [
        ("stageData", &r.stage_data),
        ("score", &r.score),
        ("select", &r.select),
        ("train", &r.train),
        ("evaluate", &r.evaluate),
        ("report", &r.report),
    ] {
        if let Some(res) = res {
            resources(res, &format!("spec.resources.{name}"), &mut errs);
        }
    }

    let a = &spec.artifacts;
    let mut check = |ok: bool, path: &str, message: &str| {
        if !ok {
            errs.push(FieldError::new(path, message));
        }
    };
    check(
        !a.bucket.is_empty() && a.bucket.len() <= 255,
        "spec.artifacts.bucket",
        "must be 1 to 255 characters",
    );
    if let Some(e) = &a.endpoint {
        check(
            e.starts_with("http://") || e.starts_with("https://"),
            "spec.artifacts.endpoint",
            "artifacts.endpoint must start with http:// or https://",
        );
        check(
            e.len() <= 2048,
            "spec.artifacts.endpoint",
            "must be at most 2048 characters",
        );
    }
    let sources = usize::from(a.credentials.secret_ref.is_some())
        + usize::from(a.credentials.from_environment == Some(true));
    check(
        sources == 1,
        "spec.artifacts.credentials",
        "artifacts.credentials needs exactly one of secretRef and fromEnvironment: true",
    );
    if let Some(s) = &a.credentials.secret_ref {
        check(
            !s.name.is_empty() && s.name.len() <= 253,
            "spec.artifacts.credentials.secretRef.name",
            "must be 1 to 253 characters",
        );
    }
    if let Some(t) = spec.ttl_seconds_after_finished {
        check(
            t >= 0,
            "spec.ttlSecondsAfterFinished",
            "must not be negative",
        );
    }

    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Checks the rules of an update: those of [`validate`] plus the immutable fields (CEL
/// transition rules `self == oldSelf`).
pub fn validate_update(old: &NASSearchSpec, new: &NASSearchSpec) -> Result<(), Vec<FieldError>> {
    let mut errs = validate(new).err().unwrap_or_default();
    if old.space != new.space {
        errs.push(FieldError::new("spec.space", "space is immutable"));
    }
    if old.sampling.seed != new.sampling.seed {
        errs.push(FieldError::new(
            "spec.sampling.seed",
            "sampling.seed is immutable",
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn recipe(r: &RecipeSpec, path: &str, errs: &mut Vec<FieldError>) {
    let o = &r.overrides;
    let mut check = |ok: bool, field: &str, message: &str| {
        if !ok {
            errs.push(FieldError::new(
                format!("{path}.overrides.{field}"),
                message,
            ));
        }
    };
    if let Some(v) = o.epochs {
        check(v > 0, "epochs", "epochs must be positive");
    }
    if let Some(v) = o.batch_size {
        check(v > 0, "batchSize", "batchSize must be positive");
    }
    if let Some(v) = o.learning_rate {
        check(v > 0.0, "learningRate", "learningRate must be positive");
    }
    if let Some(v) = o.weight_decay {
        check(v >= 0.0, "weightDecay", "must not be negative");
    }
    if let Some(v) = o.label_smoothing {
        check(
            (0.0..=0.99).contains(&v),
            "labelSmoothing",
            "must be between 0 and 0.99",
        );
    }
    if let Some(v) = o.auxiliary_weight {
        check(v >= 0.0, "auxiliaryWeight", "must not be negative");
    }
    if let Some(v) = o.drop_path {
        check(
            (0.0..=0.99).contains(&v),
            "dropPath",
            "must be between 0 and 0.99",
        );
    }
    if let Some(v) = o.grad_clip {
        check(v > 0.0, "gradClip", "gradClip must be positive");
    }
    if let Some(v) = o.channels {
        check(
            (1..=1024).contains(&v),
            "channels",
            "must be between 1 and 1024",
        );
    }
    if let Some(v) = o.cells {
        check((1..=64).contains(&v), "cells", "must be between 1 and 64");
    }
}

fn resources(r: &StageResources, path: &str, errs: &mut Vec<FieldError>) {
    let mut check = |ok: bool, field: &str, message: &str| {
        if !ok {
            errs.push(FieldError::new(format!("{path}.{field}"), message));
        }
    };
    if let Some(v) = r.gpus {
        check(v <= 16, "gpus", "must be between 0 and 16");
    }
    if let Some(v) = r.parallelism {
        check(v > 0, "parallelism", "parallelism must be positive");
    }
    if let Some(v) = r.retries_per_index {
        check(
            (0..=20).contains(&v),
            "retriesPerIndex",
            "must be between 0 and 20",
        );
    }
    if let Some(v) = r.max_failed_indexes {
        check(v >= 0, "maxFailedIndexes", "must not be negative");
    }
    if let Some(v) = r.active_deadline_seconds {
        check(
            v > 0,
            "activeDeadlineSeconds",
            "activeDeadlineSeconds must be positive",
        );
    }
    for (field, q) in [("cpu", &r.cpu), ("memory", &r.memory)] {
        if let Some(q) = q {
            check(
                names::is_quantity(&q.0),
                field,
                "must be a resource quantity such as 4, 3500m or 16Gi",
            );
        }
    }
    if let Some(p) = &r.priority_class_name {
        check(
            names::is_dns_subdomain(p),
            "priorityClassName",
            names::DNS_SUBDOMAIN_MESSAGE,
        );
    }
    for (k, v) in &r.node_selector {
        check(
            names::is_qualified_name(k) && names::is_label_value(v),
            &format!("nodeSelector[{k}]"),
            "keys must be label keys (an optional DNS prefix and '/', then up to 63 characters) and values label values",
        );
    }
    for (i, t) in r.tolerations.iter().enumerate() {
        let op = t.operator.as_deref().unwrap_or("Equal");
        let effect = t.effect.as_deref().unwrap_or_default();
        check(
            matches!(op, "Equal" | "Exists")
                && matches!(effect, "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute")
                && (op == "Equal" || t.value.as_deref().unwrap_or_default().is_empty())
                && (t.toleration_seconds.is_none() || effect == "NoExecute")
                && t.key.as_deref().is_none_or(|k| k.is_empty() || names::is_qualified_name(k)),
            &format!("tolerations[{i}]"),
            "operator must be Equal or Exists (Exists takes no value), effect NoSchedule, PreferNoSchedule or NoExecute (tolerationSeconds only with NoExecute), key a label key",
        );
    }
}

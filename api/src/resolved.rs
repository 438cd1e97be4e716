//! The resolved spec: what the operator hands every runner pod (as `spec.json`) and what the
//! runner's `local` command builds from a YAML file. Defaults are applied (serde fills them when
//! the spec is parsed), and the identity of the search fixes the artifact root.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::crd::{NASSearch, NASSearchSpec};
use crate::validate::{validate, FieldError};

/// Version of the [`ResolvedSpec`] layout; bumped on incompatible changes.
pub const RESOLVED_SPEC_SCHEMA_VERSION: u32 = 1;

/// A spec with defaults applied, bound to one search.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedSpec {
    /// [`RESOLVED_SPEC_SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// Namespace of the search.
    pub namespace: String,
    /// Name of the search.
    pub name: String,
    /// UID of the search (part of the artifact root, so a re-created search never collides).
    pub uid: String,
    /// `metadata.generation` the spec was taken from (0 in [`ResolvedSpec::for_jobs`]: the
    /// Jobs of one spec hash serve every generation with that hash).
    pub generation: i64,
    /// Hash of the spec ([`spec_hash`], or an older form of it kept by [`ResolvedSpec::adopt_hash`]);
    /// work done under another hash must not be reused.
    pub spec_hash: String,
    /// `s3://{bucket}/{prefix}/{namespace}/{name}/{uid}/`, always ending in `/`.
    pub artifacts_root: String,
    /// The spec, defaults applied.
    pub spec: NASSearchSpec,
}

/// Why a search cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The YAML or JSON does not parse as a `NASSearch`.
    #[error("not a NASSearch: {0}")]
    Parse(String),
    /// A required metadata field is missing.
    #[error("metadata.{0} is required")]
    MissingMetadata(&'static str),
    /// The spec breaks a validation rule.
    #[error("invalid spec: {}", crate::validate::describe(.0))]
    Invalid(Vec<FieldError>),
}

/// What the stage Jobs depend on: the spec without `suspend` (pausing must not restart the
/// pipeline), `ttlSecondsAfterFinished` and `deleteArtifactsOnDeletion` (they act on the
/// Kubernetes objects, not on the work).
pub fn job_relevant(spec: &NASSearchSpec) -> NASSearchSpec {
    let mut s = spec.clone();
    s.suspend = false;
    s.ttl_seconds_after_finished = None;
    s.delete_artifacts_on_deletion = false;
    s
}

/// Stable hash of [`job_relevant`] in its current form (v2): 16 hex digits of the SHA-256 of
/// its canonical JSON ([`canonical`]). A field a later release adds with a default leaves it
/// unchanged, so an operator upgrade does not restart running searches.
pub fn spec_hash(spec: &NASSearchSpec) -> String {
    let value = serde_json::to_value(job_relevant(spec)).unwrap_or(Value::Null);
    let canonical = canonical(&value, Some(crate::schema::spec_schema())).unwrap_or(Value::Null);
    let mut bytes = b"nas-spec-hash/v2\n".to_vec();
    bytes.extend(serde_json::to_vec(&canonical).unwrap_or_default());
    hex::encode(&Sha256::digest(&bytes)[..8])
}

/// The first form (v1), written by releases before the canonical one: the hash of the whole
/// serialized spec, defaults included. Recognised so that work recorded under it is kept.
pub fn spec_hash_v1(spec: &NASSearchSpec) -> String {
    // serde_json writes struct fields in declaration order and maps sorted: stable bytes.
    let bytes = serde_json::to_vec(&job_relevant(spec)).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

/// Every form of the spec's hash this release recognises, the current one first.
pub fn spec_hashes(spec: &NASSearchSpec) -> [String; 2] {
    [spec_hash(spec), spec_hash_v1(spec)]
}

/// The canonical form of a JSON value under its schema: nulls, and values equal to the
/// schema's `default` for them, left out; object keys sorted. `None` for a value left out.
pub fn canonical(value: &Value, schema: Option<&Value>) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let props = schema.and_then(|s| s.get("properties"));
            let extra = schema
                .and_then(|s| s.get("additionalProperties"))
                .filter(|a| a.is_object());
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                let sub = props.and_then(|p| p.get(k.as_str())).or(extra);
                let Some(c) = canonical(&map[k.as_str()], sub) else {
                    continue;
                };
                let default = sub
                    .and_then(|s| s.get("default"))
                    .and_then(|d| canonical(d, sub));
                if default.as_ref() != Some(&c) {
                    out.insert(k.clone(), c);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            let sub = schema.and_then(|s| s.get("items"));
            Some(Value::Array(
                items
                    .iter()
                    .map(|v| canonical(v, sub).unwrap_or(Value::Null))
                    .collect(),
            ))
        }
        other => Some(other.clone()),
    }
}

/// The artifact root of a search, ending in `/`.
pub fn artifacts_root(spec: &NASSearchSpec, namespace: &str, name: &str, uid: &str) -> String {
    let root = crate::layout::search_root(&spec.artifacts.prefix, namespace, name, uid);
    format!("s3://{}/{root}/", spec.artifacts.bucket)
}

impl ResolvedSpec {
    /// Resolves a search read from the API server (it has a namespace, name and UID).
    pub fn from_search(search: &NASSearch) -> Result<Self, ResolveError> {
        let meta = &search.metadata;
        let namespace = meta
            .namespace
            .clone()
            .ok_or(ResolveError::MissingMetadata("namespace"))?;
        let name = meta
            .name
            .clone()
            .ok_or(ResolveError::MissingMetadata("name"))?;
        let uid = meta
            .uid
            .clone()
            .ok_or(ResolveError::MissingMetadata("uid"))?;
        let mut errs = validate(&search.spec).err().unwrap_or_default();
        // The name is a label value on every Job and pod of the search (a CEL rule says so too).
        if name.len() > crate::names::LABEL_VALUE_MAX {
            errs.insert(
                0,
                FieldError::new("metadata.name", crate::names::SEARCH_NAME_MESSAGE),
            );
        }
        if !errs.is_empty() {
            return Err(ResolveError::Invalid(errs));
        }
        Ok(Self::build(
            search.spec.clone(),
            namespace,
            name,
            uid,
            meta.generation.unwrap_or(0),
        ))
    }

    /// Resolves a search from a YAML (or JSON) document, as `nas-runner local` does. A missing
    /// namespace becomes `default`; a missing UID becomes `local`. Fields the schema does not
    /// have are errors, as they are for `kubectl apply`.
    pub fn from_yaml(text: &str) -> Result<Self, ResolveError> {
        let parse = |e: &dyn std::fmt::Display| ResolveError::Parse(e.to_string());
        let search: NASSearch = serde_yaml::from_str(text).map_err(|e| parse(&e))?;
        let given: serde_json::Value = serde_yaml::from_str(text).map_err(|e| parse(&e))?;
        let kept = serde_json::to_value(&search).map_err(|e| parse(&e))?;
        let unknown = crate::strict::unknown_fields(&given, &kept);
        if !unknown.is_empty() {
            return Err(ResolveError::Invalid(unknown));
        }
        let meta = &search.metadata;
        let name = meta
            .name
            .clone()
            .ok_or(ResolveError::MissingMetadata("name"))?;
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let uid = meta.uid.clone().unwrap_or_else(|| "local".into());
        validate(&search.spec).map_err(ResolveError::Invalid)?;
        Ok(Self::build(
            search.spec,
            namespace,
            name,
            uid,
            meta.generation.unwrap_or(0),
        ))
    }

    fn build(
        spec: NASSearchSpec,
        namespace: String,
        name: String,
        uid: String,
        generation: i64,
    ) -> Self {
        Self {
            schema_version: RESOLVED_SPEC_SCHEMA_VERSION,
            artifacts_root: artifacts_root(&spec, &namespace, &name, &uid),
            spec_hash: spec_hash(&spec),
            namespace,
            name,
            uid,
            generation,
            spec,
        }
    }

    /// What the stage Jobs receive (the spec ConfigMap, hence `spec.json`): the spec reduced to
    /// [`job_relevant`] and no generation, so one spec hash always gives the same bytes. The
    /// ConfigMap named by the hash is immutable: an API server refuses other data under its
    /// name (422), which a suspend, a TTL change or a deletion would otherwise bring.
    pub fn for_jobs(&self) -> ResolvedSpec {
        ResolvedSpec {
            spec: job_relevant(&self.spec),
            generation: 0,
            ..self.clone()
        }
    }

    /// Whether `hash` is this spec's hash under a form this release recognises.
    pub fn answers_to(&self, hash: &str) -> bool {
        spec_hashes(&self.spec).iter().any(|h| h == hash)
    }

    /// Keeps the hash `recorded` by earlier work (the status, a stored `spec.json`) when it is
    /// this spec's under an older form, so that work and its Jobs are kept. Returns whether it
    /// did.
    pub fn adopt_hash(&mut self, recorded: Option<&str>) -> bool {
        match recorded {
            Some(h) if h != self.spec_hash && self.answers_to(h) => {
                self.spec_hash = h.to_string();
                true
            }
            _ => false,
        }
    }

    /// Pretty JSON, as written to `spec.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

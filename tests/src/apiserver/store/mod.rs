//! The object store behind the double: objects as JSON, one global resourceVersion counter, an
//! event log for watches, and the server-managed behaviour of the real API server (metadata the
//! server owns, optimistic concurrency, status subresource, generation, finalizers, owner
//! cascade).
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use super::apply::{self, Managers};
use super::resources::{Propagation, ResourceType};
use super::status::ApiError;

mod delete;

/// Index of a resource type in the store's table.
pub type TypeId = usize;

/// What happened to an object, as watch streams report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, with the object before it (for selector transitions in watches).
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub ty: TypeId,
    pub kind: EventType,
    pub object: Value,
    pub old: Option<Value>,
}

/// How a patch body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// Options of a delete, from the query or the DeleteOptions body.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// The result of a delete: gone now, or kept until its finalizers are removed.
#[derive(Debug, Clone)]
pub enum Deleted {
    Now(Value),
    Pending(Value),
}

struct Stored {
    obj: Value,
    managers: Managers,
}

type Key = (String, String);

struct Inner {
    rv: u64,
    objects: Vec<BTreeMap<Key, Stored>>,
    log: VecDeque<Event>,
    /// Events up to this resourceVersion are gone: watches from older versions get 410.
    compacted: u64,
}

/// The object store. Synchronous: no lock is held across an await.
pub struct Store {
    pub types: Vec<ResourceType>,
    inner: Mutex<Inner>,
    notify: tokio::sync::watch::Sender<u64>,
    max_events: usize,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything but metadata and (with a status subresource) status: a change here bumps generation.
fn spec_part(obj: &Value, strip_status: bool) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if strip_status {
            m.remove("status");
        }
    }
    o
}

/// RFC 1123 subdomain, as the server requires of most names.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl Store {
    pub fn new(types: Vec<ResourceType>, max_events: usize) -> Self {
        let n = types.len();
        Store {
            types,
            inner: Mutex::new(Inner {
                rv: 1,
                objects: (0..n).map(|_| BTreeMap::new()).collect(),
                log: VecDeque::new(),
                compacted: 0,
            }),
            notify: tokio::sync::watch::channel(1).0,
            max_events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The type with this group and plural.
    pub fn type_id(&self, group: &str, plural: &str) -> Option<TypeId> {
        self.types
            .iter()
            .position(|t| t.group == group && t.plural == plural)
    }

    /// A receiver that sees the latest resourceVersion after every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Drops the whole event log, as etcd compaction does: watches from any earlier
    /// resourceVersion now get 410 Gone.
    pub fn compact(&self) {
        let mut g = self.lock();
        g.log.clear();
        g.compacted = g.rv;
    }

    /// Events after `rv`, or 410 if some of them were compacted away.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Event>, ApiError> {
        let g = self.lock();
        if rv < g.compacted {
            return Err(ApiError::gone(rv, g.compacted));
        }
        Ok(g.log.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    fn record(
        &self,
        g: &mut Inner,
        ty: TypeId,
        kind: EventType,
        object: Value,
        old: Option<Value>,
    ) {
        let rv = g.rv;
        g.log.push_back(Event {
            rv,
            ty,
            kind,
            object,
            old,
        });
        while g.log.len() > self.max_events {
            if let Some(e) = g.log.pop_front() {
                g.compacted = e.rv;
            }
        }
        self.notify.send_replace(rv);
    }

    fn next_rv(g: &mut Inner) -> u64 {
        g.rv += 1;
        g.rv
    }

    /// One object.
    pub fn get(&self, ty: TypeId, ns: &str, name: &str) -> Result<Value, ApiError> {
        let g = self.lock();
        g.objects[ty]
            .get(&(ns.to_string(), name.to_string()))
            .map(|s| s.obj.clone())
            .ok_or_else(|| ApiError::not_found(&self.types[ty], name))
    }

    /// All objects of a type (in one namespace, or all), sorted by namespace and name, with the
    /// resourceVersion the list is consistent with.
    pub fn list(&self, ty: TypeId, ns: Option<&str>) -> (Vec<Value>, u64) {
        let g = self.lock();
        let items = g.objects[ty]
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|want| want == n))
            .map(|(_, s)| s.obj.clone())
            .collect();
        (items, g.rv)
    }

    fn check_identity(&self, ty: TypeId, ns: &str, obj: &mut Value) -> Result<(), ApiError> {
        let t = &self.types[ty];
        if let Some(av) = obj.get("apiVersion").and_then(Value::as_str) {
            if av != t.api_version() {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    t.api_version()
                )));
            }
        }
        if let Some(k) = obj.get("kind").and_then(Value::as_str) {
            if k != t.kind {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    t.kind
                )));
            }
        }
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        obj["apiVersion"] = json!(t.api_version());
        obj["kind"] = json!(t.kind);
        let m = meta_mut(obj);
        match m.get("namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => {
                m.insert("namespace".into(), json!(ns));
            }
        }
        Ok(())
    }

    /// Creates an object (POST, or server-side apply of an absent one).
    pub fn create(
        &self,
        ty: TypeId,
        ns: &str,
        mut obj: Value,
        managers: Managers,
    ) -> Result<Value, ApiError> {
        let t = &self.types[ty];
        self.check_identity(ty, ns, &mut obj)?;
        let mut g = self.lock();
        let m = meta_mut(&mut obj);
        if m.get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let prefix = m
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    t,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
            let suffix: String = uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(5)
                .collect();
            name = format!("{prefix}{suffix}");
        }
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                t,
                &name,
                "metadata.name",
                &format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
            ));
        }
        let key = (ns.to_string(), name.clone());
        if g.objects[ty].contains_key(&key) {
            return Err(ApiError::already_exists(t, &name));
        }
        let rv = Self::next_rv(&mut g);
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now()));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        m.insert("generation".into(), json!(1));
        m.remove("deletionTimestamp");
        if t.status_subresource {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        g.objects[ty].insert(
            key.clone(),
            Stored {
                obj: obj.clone(),
                managers,
            },
        );
        self.record(&mut g, ty, EventType::Added, obj.clone(), None);
        // The garbage collector deletes a dependent whose owners are all gone: a controller
        // that had not yet seen its owner's deletion may create one after it.
        let owners = owner_uids(&obj);
        if !owners.is_empty() && !owners.iter().any(|u| Self::uid_exists(&g, ns, u)) {
            self.delete_locked(&mut g, ty, &key, Propagation::Background);
        }
        Ok(obj)
    }

    /// Builds the stored form of an update: server-owned metadata from `old`, status per the
    /// subresource rules, generation bumped on spec change.
    fn prepare_update(
        &self,
        ty: TypeId,
        old: &Value,
        mut new: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let t = &self.types[ty];
        let name = meta_str(old, "name").unwrap_or_default().to_string();
        if status_only {
            let mut out = old.clone();
            match new.get("status") {
                Some(s) => out["status"] = s.clone(),
                None => {
                    if let Some(o) = out.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            return Ok(out);
        }
        if let Some(n) = meta_str(&new, "name") {
            if n != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        let ns = meta_str(old, "namespace").unwrap_or_default().to_string();
        self.check_identity(ty, &ns, &mut new)?;
        if t.status_subresource {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        let deleting = old.pointer("/metadata/deletionTimestamp").is_some();
        if deleting {
            let before: BTreeSet<String> = finalizers(old).into_iter().collect();
            if let Some(f) = finalizers(&new).into_iter().find(|f| !before.contains(f)) {
                return Err(ApiError::invalid(
                    t,
                    &name,
                    "metadata.finalizers",
                    &format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [\"{f}\"]"),
                ));
            }
        }
        let mut generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        if spec_part(old, t.status_subresource) != spec_part(&new, t.status_subresource) {
            generation += 1;
        }
        let om = old.get("metadata").cloned().unwrap_or_default();
        let m = meta_mut(&mut new);
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match om.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        m.insert("generation".into(), json!(generation));
        Ok(new)
    }

    /// Stores an updated object (or finishes its deletion when the last finalizer went away).
    fn commit(&self, g: &mut Inner, ty: TypeId, key: &Key, mut obj: Value) -> Value {
        let rv = Self::next_rv(g);
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let done =
            obj.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&obj).is_empty();
        let Some(stored) = g.objects[ty].get_mut(key) else {
            return obj;
        };
        let old = std::mem::replace(&mut stored.obj, obj.clone());
        self.record(g, ty, EventType::Modified, obj.clone(), Some(old));
        if done {
            self.remove(g, ty, key, Propagation::Background);
        }
        obj
    }

    fn locate(
        &self,
        g: &Inner,
        ty: TypeId,
        ns: &str,
        name: &str,
    ) -> Result<(Key, Value), ApiError> {
        let key = (ns.to_string(), name.to_string());
        match g.objects[ty].get(&key) {
            Some(s) => Ok((key, s.obj.clone())),
            None => Err(ApiError::not_found(&self.types[ty], name)),
        }
    }

    fn check_rv(
        &self,
        ty: TypeId,
        name: &str,
        current: &Value,
        given: &Value,
    ) -> Result<(), ApiError> {
        match meta_str(given, "resourceVersion") {
            Some(rv) if !rv.is_empty() && Some(rv) != meta_str(current, "resourceVersion") => {
                Err(ApiError::stale(&self.types[ty], name))
            }
            _ => Ok(()),
        }
    }

    /// PUT on the object or its `/status`.
    pub fn replace(
        &self,
        ty: TypeId,
        ns: &str,
        name: &str,
        body: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        let mut g = self.lock();
        let (key, old) = self.locate(&g, ty, ns, name)?;
        self.check_rv(ty, name, &old, &body)?;
        let new = self.prepare_update(ty, &old, body, status)?;
        Ok(self.commit(&mut g, ty, &key, new))
    }

    /// PATCH on the object or its `/status`; server-side apply creates an absent object.
    #[allow(clippy::too_many_arguments)] // one per part of the request; a struct would only rename them
    pub fn patch(
        &self,
        ty: TypeId,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        status: bool,
        field_manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        let t = &self.types[ty];
        let parse_json = |b: &[u8]| -> Result<Value, ApiError> {
            serde_json::from_slice(b)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
        };
        if kind == PatchKind::Apply {
            let manager = field_manager.filter(|m| !m.is_empty()).ok_or_else(|| {
                ApiError::bad_request("PATCH: fieldManager is required for apply requests")
            })?;
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            let mut applied: Value = serde_yaml::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            if !applied.is_object() {
                return Err(ApiError::bad_request(
                    "the applied configuration must be an object",
                ));
            }
            if let Some(n) = meta_str(&applied, "name") {
                if n != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
            }
            let mgr_key = if status {
                format!("{manager}/status")
            } else {
                manager.to_string()
            };
            if t.status_subresource {
                let o = applied.as_object_mut().expect("checked object");
                if status {
                    o.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status"));
                } else {
                    o.remove("status");
                }
            }
            let existing = {
                let g = self.lock();
                g.objects[ty]
                    .get(&(ns.to_string(), name.to_string()))
                    .map(|s| (s.obj.clone(), s.managers.clone()))
            };
            let Some((old, mut managers)) = existing else {
                if status {
                    return Err(ApiError::not_found(t, name));
                }
                let mut managers = Managers::new();
                let mut obj = apply::apply(None, &applied, &mgr_key, &mut managers, t.builtin);
                meta_mut(&mut obj).insert("name".into(), json!(name));
                return self.create(ty, ns, obj, managers);
            };
            self.check_rv(ty, name, &old, &applied)?;
            let merged = apply::apply(Some(&old), &applied, &mgr_key, &mut managers, t.builtin);
            let mut g = self.lock();
            let (key, current) = self.locate(&g, ty, ns, name)?;
            if meta_str(&current, "resourceVersion") != meta_str(&old, "resourceVersion") {
                // A write slipped in between: the real server retries internally; so do we.
                drop(g);
                return self.patch(ty, ns, name, kind, body, status, field_manager);
            }
            let new = self.prepare_update(ty, &old, merged, status)?;
            if let Some(s) = g.objects[ty].get_mut(&key) {
                s.managers = managers;
            }
            return Ok(self.commit(&mut g, ty, &key, new));
        }
        let mut g = self.lock();
        let (key, old) = self.locate(&g, ty, ns, name)?;
        let mut new = old.clone();
        match kind {
            PatchKind::Merge => {
                let p = parse_json(body)?;
                self.check_rv(ty, name, &old, &p)?;
                json_patch::merge(&mut new, &p);
            }
            PatchKind::Strategic => {
                if !t.builtin {
                    return Err(ApiError::unsupported_media_type(
                        "application/strategic-merge-patch+json",
                    ));
                }
                // Approximated by a JSON merge patch (lists are replaced, not merged by key).
                let p = parse_json(body)?;
                self.check_rv(ty, name, &old, &p)?;
                json_patch::merge(&mut new, &p);
            }
            PatchKind::Json => {
                let p: json_patch::Patch = serde_json::from_slice(body).map_err(|e| {
                    ApiError::bad_request(format!("error decoding JSON patch: {e}"))
                })?;
                json_patch::patch(&mut new, &p).map_err(|e| ApiError {
                    code: 422,
                    reason: "Invalid",
                    message: format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ),
                    details: None,
                })?;
                self.check_rv(ty, name, &old, &new)?;
            }
            PatchKind::Apply => unreachable!("handled above"),
        }
        let new = self.prepare_update(ty, &old, new, status)?;
        Ok(self.commit(&mut g, ty, &key, new))
    }
}

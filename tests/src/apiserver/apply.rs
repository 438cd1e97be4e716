//! Server-side apply, faithful enough for controllers: the applied configuration is merged into
//! the live object (maps recursively; the list-maps Kubernetes declares for built-in types by
//! their key; every other list atomically, as for a CRD without list-type markers), and fields a
//! manager applied before but omits now are removed unless another apply manager owns them.
//! Conflicts between managers are not reported (every apply acts as `force=true`), and non-apply
//! writers own no fields.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    /// A map key.
    Key(String),
    /// A list-map item: (key field, key value as JSON).
    Item(String, String),
    /// A set-list item (its JSON).
    Member(String),
}

/// A field path, e.g. `spec.template.spec.containers[name=main].image`.
pub type FieldPath = Vec<Seg>;

/// Field sets per manager (keyed `manager` or `manager/status`).
pub type Managers = BTreeMap<String, BTreeSet<FieldPath>>;

enum ListType {
    Map(&'static str),
    Set,
    Atomic,
}

/// The list type of a field: ObjectMeta's lists are always typed; other built-in ones where
/// the Kubernetes OpenAPI marks them so; custom resources' lists are atomic.
fn list_type(path: &[Seg], field: &str, builtin: bool) -> ListType {
    let in_meta = matches!(path.first(), Some(Seg::Key(k)) if k == "metadata");
    if !(builtin || in_meta) {
        return ListType::Atomic;
    }
    match field {
        "finalizers" => ListType::Set,
        "ownerReferences" => ListType::Map("uid"),
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => ListType::Map("name"),
        "volumeMounts" => ListType::Map("mountPath"),
        "ports" => ListType::Map("containerPort"),
        "conditions" => ListType::Map("type"),
        _ => ListType::Atomic,
    }
}

/// Paths the server manages itself; no manager owns them.
fn unowned(path: &[Seg]) -> bool {
    let k = |i: usize| match path.get(i) {
        Some(Seg::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    matches!(k(0), Some("apiVersion" | "kind"))
        || (k(0) == Some("metadata")
            && matches!(
                k(1),
                Some(
                    "name"
                        | "namespace"
                        | "resourceVersion"
                        | "uid"
                        | "generation"
                        | "creationTimestamp"
                        | "deletionTimestamp"
                        | "managedFields"
                )
            ))
}

/// Every path (inner nodes included) the applied configuration sets.
pub fn field_set(applied: &Value, builtin: bool) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect(applied, &mut Vec::new(), builtin, &mut out);
    out
}

fn collect(v: &Value, path: &mut FieldPath, builtin: bool, out: &mut BTreeSet<FieldPath>) {
    if !path.is_empty() && !unowned(path) {
        out.insert(path.clone());
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(Seg::Key(k.clone()));
                if !unowned(path) {
                    collect(child, path, builtin, out);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let field = match path.last() {
                Some(Seg::Key(k)) => k.clone(),
                _ => String::new(),
            };
            match list_type(path, &field, builtin) {
                ListType::Map(key) => {
                    for it in items {
                        if let Some(kv) = it.get(key) {
                            path.push(Seg::Item(key.to_string(), kv.to_string()));
                            collect(it, path, builtin, out);
                            path.pop();
                        }
                    }
                }
                ListType::Set => {
                    for it in items {
                        path.push(Seg::Member(it.to_string()));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                ListType::Atomic => {}
            }
        }
        _ => {}
    }
}

/// Merges `applied` into `live`.
pub fn merge(live: &mut Value, applied: &Value, builtin: bool) {
    merge_at(live, applied, &mut Vec::new(), builtin);
}

fn merge_at(live: &mut Value, applied: &Value, path: &mut FieldPath, builtin: bool) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                path.push(Seg::Key(k.clone()));
                match l.get_mut(k) {
                    Some(lv) if !av.is_null() => merge_at(lv, av, path, builtin),
                    _ => {
                        l.insert(k.clone(), av.clone());
                    }
                }
                path.pop();
            }
        }
        (Value::Array(l), Value::Array(a)) => {
            let field = match path.last() {
                Some(Seg::Key(k)) => k.clone(),
                _ => String::new(),
            };
            match list_type(path, &field, builtin) {
                ListType::Map(key) => {
                    for it in a {
                        match l
                            .iter_mut()
                            .find(|x| x.get(key).is_some() && x.get(key) == it.get(key))
                        {
                            Some(existing) => merge_at(existing, it, path, builtin),
                            None => l.push(it.clone()),
                        }
                    }
                }
                ListType::Set => {
                    for it in a {
                        if !l.contains(it) {
                            l.push(it.clone());
                        }
                    }
                }
                ListType::Atomic => *l = a.clone(),
            }
        }
        (l, a) => *l = a.clone(),
    }
}

/// Removes one path; an inner map node only if it became empty.
fn remove(obj: &mut Value, path: &[Seg], leaf: bool) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parent {
        let next = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k),
            (Seg::Item(key, kv), Value::Array(items)) => items
                .iter_mut()
                .find(|x| x.get(key).map(Value::to_string).as_deref() == Some(kv)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    let removable = |v: &Value| leaf || matches!(v, Value::Object(m) if m.is_empty());
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) if m.get(k).is_some_and(removable) => {
            m.remove(k);
        }
        (Seg::Item(key, kv), Value::Array(items)) => {
            items.retain(|x| x.get(key).map(Value::to_string).as_deref() != Some(kv));
        }
        (Seg::Member(j), Value::Array(items)) => items.retain(|x| {
            // Set members are compared by their JSON text, as recorded in the field set.
            let text = x.to_string();
            text != *j
        }),
        _ => {}
    }
}

/// Applies `applied` for `manager` onto `live` (or onto an empty object when creating) and
/// records the manager's new field set in `managers`.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    managers: &mut Managers,
    builtin: bool,
) -> Value {
    let mut out = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    merge(&mut out, applied, builtin);
    let new = field_set(applied, builtin);
    let prev = managers.remove(manager).unwrap_or_default();
    let others: BTreeSet<&FieldPath> = managers.values().flatten().collect();
    // Longest paths first, so that children go before the maps holding them.
    let mut dropped: Vec<&FieldPath> = prev
        .iter()
        .filter(|p| !new.contains(*p) && !others.contains(p))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        let leaf = !prev.iter().any(|q| q.len() > p.len() && q.starts_with(p));
        remove(&mut out, p, leaf);
    }
    managers.insert(manager.to_string(), new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_merges_and_removes_fields_the_manager_dropped() {
        let mut mgrs = Managers::new();
        let live = json!({"spec": {"a": 1, "b": {"c": 2}, "keep": true}});
        let v1 = apply(
            Some(&live),
            &json!({"spec": {"a": 5, "b": {"c": 3, "d": 4}}}),
            "m",
            &mut mgrs,
            false,
        );
        assert_eq!(
            v1,
            json!({"spec": {"a": 5, "b": {"c": 3, "d": 4}, "keep": true}})
        );
        let v2 = apply(Some(&v1), &json!({"spec": {"a": 6}}), "m", &mut mgrs, false);
        assert_eq!(v2, json!({"spec": {"a": 6, "keep": true}}));
    }

    #[test]
    fn another_managers_fields_survive() {
        let mut mgrs = Managers::new();
        let v1 = apply(
            None,
            &json!({"spec": {"x": 1, "y": 1}}),
            "one",
            &mut mgrs,
            false,
        );
        let v2 = apply(
            Some(&v1),
            &json!({"spec": {"y": 2}}),
            "two",
            &mut mgrs,
            false,
        );
        let v3 = apply(
            Some(&v2),
            &json!({"spec": {"x": 1}}),
            "one",
            &mut mgrs,
            false,
        );
        assert_eq!(v3, json!({"spec": {"x": 1, "y": 2}}));
    }

    #[test]
    fn builtin_list_maps_merge_by_key_and_custom_lists_are_atomic() {
        let live = json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]}});
        let patch = json!({"status": {"conditions": [{"type": "B", "status": "True"}]}});
        let mut mgrs = Managers::new();
        let merged = apply(Some(&live), &patch, "m", &mut mgrs, true);
        assert_eq!(merged["status"]["conditions"].as_array().unwrap().len(), 2);
        assert_eq!(merged["status"]["conditions"][1]["status"], "True");
        let mut mgrs = Managers::new();
        let atomic = apply(Some(&live), &patch, "m", &mut mgrs, false);
        assert_eq!(
            atomic["status"]["conditions"],
            patch["status"]["conditions"]
        );
    }

    #[test]
    fn finalizers_are_a_set_even_on_custom_resources() {
        let mut mgrs = Managers::new();
        let live = json!({"metadata": {"finalizers": ["a"]}});
        let v = apply(
            Some(&live),
            &json!({"metadata": {"finalizers": ["b"]}}),
            "m",
            &mut mgrs,
            false,
        );
        assert_eq!(v["metadata"]["finalizers"], json!(["a", "b"]));
        let v = apply(Some(&v), &json!({"metadata": {}}), "m", &mut mgrs, false);
        assert_eq!(v["metadata"]["finalizers"], json!(["a"]));
    }
}

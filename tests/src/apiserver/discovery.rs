//! `/version` and the legacy (non-aggregated) discovery documents `kube::Discovery::run` reads.
use serde_json::{json, Value};

use super::resources::ResourceType;

/// `/version`, with every field `k8s_openapi`'s `Info` requires.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "gitVersion": "v1.34.0-nas-e2e",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]
    })
}

fn group_versions(types: &[ResourceType], group: &str) -> Vec<String> {
    let mut vs: Vec<String> = types
        .iter()
        .filter(|t| t.group == group)
        .map(|t| t.version.clone())
        .collect();
    vs.dedup();
    vs
}

fn group_doc(types: &[ResourceType], group: &str) -> Value {
    let versions: Vec<Value> = group_versions(types, group)
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)
    })
}

/// `/apis`: every named group.
pub fn group_list(types: &[ResourceType]) -> Value {
    let mut groups: Vec<&str> = types
        .iter()
        .map(|t| t.group.as_str())
        .filter(|g| !g.is_empty())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups.into_iter().map(|g| group_doc(types, g)).collect::<Vec<_>>()
    })
}

/// `/apis/<group>`, if the group is served.
pub fn group(types: &[ResourceType], group: &str) -> Option<Value> {
    types.iter().any(|t| t.group == group).then(|| {
        let mut d = group_doc(types, group);
        d["kind"] = json!("APIGroup");
        d["apiVersion"] = json!("v1");
        d
    })
}

/// `/api/v1` or `/apis/<group>/<version>`, if served.
pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        resources.push(json!({
            "name": t.plural,
            "singularName": t.singular(),
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        }));
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"]
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

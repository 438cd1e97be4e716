//! The environment of a pod's container, resolved as the kubelet does: `envFrom` ConfigMaps and
//! Secrets, then `env` entries (literal values with `$(VAR)` expansion, `fieldRef`,
//! `configMapKeyRef`, `secretKeyRef`), on top of the controller's own variables.
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use kube::api::Api;
use serde_json::Value;

use super::{process, JobControllerConfig};

/// Resolves the container's environment as the kubelet does.
pub async fn container_env(
    client: &kube::Client,
    config: &JobControllerConfig,
    ns: &str,
    pod: &Value,
    c: &Container,
    index: Option<i32>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for k in &config.inherit_env {
        if let Ok(v) = std::env::var(k) {
            env.push((k.clone(), v));
        }
    }
    env.extend(config.extra_env.iter().cloned());
    if let Some(i) = index {
        env.push(("JOB_COMPLETION_INDEX".into(), i.to_string()));
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret_data = |s: &Secret| -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = s
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        out.extend(s.string_data.clone().unwrap_or_default());
        out
    };
    for src in c.env_from.iter().flatten() {
        let prefix = src.prefix.clone().unwrap_or_default();
        if let Some(r) = &src.config_map_ref {
            if let Ok(cm) = cms.get(&r.name).await {
                env.extend(
                    cm.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (format!("{prefix}{k}"), v)),
                );
            }
        }
        if let Some(r) = &src.secret_ref {
            if let Ok(s) = secrets.get(&r.name).await {
                env.extend(
                    secret_data(&s)
                        .into_iter()
                        .map(|(k, v)| (format!("{prefix}{k}"), v)),
                );
            }
        }
    }
    for var in c.env.iter().flatten() {
        let known: HashMap<String, String> = env.iter().cloned().collect();
        let value = if let Some(v) = &var.value {
            Some(process::expand(v, &known))
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                let p = f.field_path.as_str();
                let meta = |k: &str| {
                    pod.pointer(&format!("/metadata/{k}"))
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                let keyed = |field: &str| {
                    let key = p
                        .strip_prefix(&format!("metadata.{field}['"))?
                        .strip_suffix("']")?;
                    pod.pointer(&format!("/metadata/{field}"))?
                        .get(key)?
                        .as_str()
                        .map(String::from)
                };
                match p {
                    "metadata.name" | "metadata.namespace" | "metadata.uid" => meta(&p[9..]),
                    "spec.nodeName" => Some("e2e-node".into()),
                    "spec.serviceAccountName" => Some(
                        pod.pointer("/spec/serviceAccountName")
                            .and_then(Value::as_str)
                            .unwrap_or("default")
                            .into(),
                    ),
                    "status.podIP" | "status.hostIP" => Some("127.0.0.1".into()),
                    _ => keyed("labels").or_else(|| keyed("annotations")),
                }
            } else if let Some(r) = &from.config_map_key_ref {
                cms.get(&r.name)
                    .await
                    .ok()
                    .and_then(|cm| cm.data.unwrap_or_default().get(&r.key).cloned())
            } else if let Some(r) = &from.secret_key_ref {
                secrets
                    .get(&r.name)
                    .await
                    .ok()
                    .and_then(|s| secret_data(&s).get(&r.key).cloned())
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            env.retain(|(k, _)| *k != var.name);
            env.push((var.name.clone(), v));
        }
    }
    env
}

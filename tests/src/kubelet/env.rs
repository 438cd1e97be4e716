//! A container's environment, resolved as the kubelet does: the image's variables, the service
//! variables, then `envFrom` ConfigMaps and Secrets, then `env` entries (literal values with
//! `$(VAR)` expansion, `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef`). A
//! missing object or key that is not `optional` is an error with the kubelet's message, which
//! leaves the container Waiting with `CreateContainerConfigError`.
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::api::Api;

use super::process;

/// Reads ConfigMaps and Secrets of one namespace, as the kubelet's object caches do.
pub struct Objects {
    configmaps: Api<ConfigMap>,
    secrets: Api<Secret>,
    namespace: String,
}

impl Objects {
    pub fn new(client: &kube::Client, namespace: &str) -> Objects {
        Objects {
            configmaps: Api::namespaced(client.clone(), namespace),
            secrets: Api::namespaced(client.clone(), namespace),
            namespace: namespace.to_string(),
        }
    }

    /// A ConfigMap's data, or the kubelet's message when it does not exist.
    pub async fn configmap(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        match self.configmaps.get_opt(name).await {
            Ok(Some(cm)) => {
                let mut data = cm.data.unwrap_or_default();
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    data.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                }
                Ok(data)
            }
            Ok(None) => Err(format!("configmap \"{name}\" not found")),
            Err(e) => Err(format!("configmap \"{name}\": {e}")),
        }
    }

    /// A Secret's data, or the kubelet's message when it does not exist.
    pub async fn secret(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        match self.secrets.get_opt(name).await {
            Ok(Some(s)) => {
                let mut out: BTreeMap<String, String> = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                out.extend(s.string_data.unwrap_or_default());
                Ok(out)
            }
            Ok(None) => Err(format!("secret \"{name}\" not found")),
            Err(e) => Err(format!("secret \"{name}\": {e}")),
        }
    }

    /// The data of the object `name` of `source`; None when it is missing and `optional`.
    pub async fn data_of(
        &self,
        source: Source,
        name: &str,
        optional: Option<bool>,
    ) -> Result<Option<BTreeMap<String, String>>, String> {
        let data = match source {
            Source::ConfigMap => self.configmap(name).await,
            Source::Secret => self.secret(name).await,
        };
        match data {
            Ok(d) => Ok(Some(d)),
            Err(_) if optional == Some(true) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The value of `key` in the object `name` of `source`, as a `configMapKeyRef` or
    /// `secretKeyRef` resolves it; None when the object or key is missing and `optional`.
    async fn key_of(
        &self,
        source: Source,
        name: &str,
        key: &str,
        optional: Option<bool>,
    ) -> Result<Option<String>, String> {
        let Some(data) = self.data_of(source, name, optional).await? else {
            return Ok(None);
        };
        match data.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None if optional == Some(true) => Ok(None),
            None => Err(format!(
                "couldn't find key {key} in {} {}/{name}",
                source.kind(),
                self.namespace
            )),
        }
    }
}

/// Which kind of object a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    /// The kind, as the kubelet's messages name it.
    pub fn kind(self) -> &'static str {
        match self {
            Source::ConfigMap => "ConfigMap",
            Source::Secret => "Secret",
        }
    }
}

/// The value of a `fieldRef` path, as the downward API gives it.
pub fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let meta = &pod.metadata;
    let keyed = |map: &Option<BTreeMap<String, String>>, field: &str| {
        let key = path
            .strip_prefix(&format!("metadata.{field}['"))?
            .strip_suffix("']")?;
        map.as_ref()?.get(key).cloned()
    };
    let spec = pod.spec.as_ref();
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => Some(
            spec.and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
        ),
        "status.podIP" | "status.hostIP" | "status.podIPs" | "status.hostIPs" => {
            Some("127.0.0.1".into())
        }
        _ => keyed(&meta.labels, "labels").or_else(|| keyed(&meta.annotations, "annotations")),
    }
}

/// Resolves the container's environment on top of `base` (image and service variables).
pub async fn container_env(
    objects: &Objects,
    pod: &Pod,
    c: &Container,
    base: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, String> {
    let mut env = base;
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(name, _)| *name != k);
        env.push((k, v));
    };
    for src in c.env_from.iter().flatten() {
        let prefix = src.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &src.config_map_ref {
            objects
                .data_of(Source::ConfigMap, &r.name, r.optional)
                .await?
        } else if let Some(r) = &src.secret_ref {
            objects.data_of(Source::Secret, &r.name, r.optional).await?
        } else {
            continue;
        };
        for (k, v) in data.unwrap_or_default() {
            set(&mut env, format!("{prefix}{k}"), v);
        }
    }
    for var in c.env.iter().flatten() {
        let known: HashMap<String, String> = env.iter().cloned().collect();
        let value = if let Some(v) = &var.value {
            Some(process::expand(v, &known))
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, &f.field_path)
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(c, &r.resource)
            } else if let Some(r) = &from.config_map_key_ref {
                objects
                    .key_of(Source::ConfigMap, &r.name, &r.key, r.optional)
                    .await?
            } else if let Some(r) = &from.secret_key_ref {
                objects
                    .key_of(Source::Secret, &r.name, &r.key, r.optional)
                    .await?
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            set(&mut env, var.name.clone(), v);
        }
    }
    Ok(env)
}

/// `resourceFieldRef` (`limits.cpu`, `requests.memory`, ...): the quantity as written, or
/// empty when the container sets none (the real kubelet falls back to node allocatable).
fn resource_value(c: &Container, resource: &str) -> Option<String> {
    let r = c.resources.as_ref()?;
    let (map, name) = match resource.split_once('.') {
        Some(("limits", n)) => (r.limits.as_ref(), n),
        Some(("requests", n)) => (r.requests.as_ref(), n),
        _ => return None,
    };
    Some(
        map.and_then(|m| m.get(name))
            .map(|q| q.0.clone())
            .unwrap_or_default(),
    )
}

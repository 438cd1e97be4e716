//! Volumes as the kubelet mounts them, as per-pod folders: ConfigMap and Secret volumes (every
//! key, or the `items` given), emptyDir, and projected volumes (ConfigMap, Secret, downward API
//! and a ServiceAccount token from the TokenRequest API, bound to the pod). A missing object
//! that is not `optional` is an error with the kubelet's `FailedMount` message, which keeps the
//! pod in `ContainerCreating`. The process runs on this machine, not in a container, so the
//! container's mount paths are rewritten to the folders in its argv and environment
//! ([`rewrite`]).
use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, ServiceAccount, Volume};
use kube::api::{Api, PostParams};

use super::env::{field_value, Objects, Source};

/// A container mount: its path in the container and the local folder behind it.
#[derive(Debug, Clone)]
pub struct Mount {
    pub path: String,
    pub local: String,
}

/// Writes the volumes `container` mounts under `dir/volumes/`; returns the mounts, longest path
/// first (so nested mounts rewrite right).
pub async fn materialize(
    client: &kube::Client,
    objects: &Objects,
    pod: &Pod,
    container: &Container,
    dir: &Path,
) -> Result<Vec<Mount>, String> {
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.iter().find(|v| v.name == mount.name) else {
            return Err(format!(
                "volume \"{}\" is mounted but not defined",
                mount.name
            ));
        };
        let local = dir.join("volumes").join(&mount.name);
        std::fs::create_dir_all(&local).map_err(|e| format!("{}: {e}", local.display()))?;
        let files = volume_files(client, objects, pod, volume)
            .await
            .map_err(|e| {
                format!(
                    "MountVolume.SetUp failed for volume \"{}\" : {e}",
                    mount.name
                )
            })?;
        for (path, value) in files {
            let file = local.join(&path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::write(&file, value).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        let local = match &mount.sub_path {
            Some(sub) if !sub.is_empty() => local.join(sub),
            _ => local,
        };
        out.push(Mount {
            path: mount.mount_path.trim_end_matches('/').to_string(),
            local: local.to_string_lossy().into_owned(),
        });
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.path.len()));
    Ok(out)
}

/// Keys as files: all of them, or the `items` chosen (a missing item key is an error).
fn select(
    data: BTreeMap<String, String>,
    items: &Option<Vec<KeyToPath>>,
    kind: &str,
    name: &str,
) -> Result<Vec<(String, String)>, String> {
    match items {
        None => Ok(data.into_iter().collect()),
        Some(items) => items
            .iter()
            .map(|i| {
                data.get(&i.key)
                    .map(|v| (i.path.clone(), v.clone()))
                    .ok_or_else(|| {
                        format!(
                            "configmap references non-existent config key: {} ({kind} {name})",
                            i.key
                        )
                    })
            })
            .collect(),
    }
}

/// The files of a ConfigMap or Secret source (none when it is missing and `optional`).
async fn object_files(
    objects: &Objects,
    source: Source,
    name: &str,
    items: &Option<Vec<KeyToPath>>,
    optional: Option<bool>,
) -> Result<Vec<(String, String)>, String> {
    match objects.data_of(source, name, optional).await? {
        Some(data) => select(data, items, source.kind(), name),
        None => Ok(Vec::new()),
    }
}

async fn volume_files(
    client: &kube::Client,
    objects: &Objects,
    pod: &Pod,
    volume: &Volume,
) -> Result<Vec<(String, String)>, String> {
    if let Some(cm) = &volume.config_map {
        return object_files(objects, Source::ConfigMap, &cm.name, &cm.items, cm.optional).await;
    }
    if let Some(s) = &volume.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        return object_files(objects, Source::Secret, &name, &s.items, s.optional).await;
    }
    if volume.empty_dir.is_some() {
        return Ok(Vec::new());
    }
    if let Some(p) = &volume.projected {
        let mut files = Vec::new();
        for src in p.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                let source = Source::ConfigMap;
                files
                    .extend(object_files(objects, source, &cm.name, &cm.items, cm.optional).await?);
            }
            if let Some(s) = &src.secret {
                let source = Source::Secret;
                files.extend(object_files(objects, source, &s.name, &s.items, s.optional).await?);
            }
            for item in src
                .downward_api
                .iter()
                .flat_map(|d| d.items.iter().flatten())
            {
                if let Some(f) = &item.field_ref {
                    files.push((
                        item.path.clone(),
                        field_value(pod, &f.field_path).unwrap_or_default(),
                    ));
                }
            }
            if let Some(t) = &src.service_account_token {
                let token =
                    service_account_token(client, pod, t.audience.clone(), t.expiration_seconds)
                        .await?;
                files.push((t.path.clone(), token));
            }
        }
        return Ok(files);
    }
    Err("volume type not supported by the process kubelet (configMap, secret, emptyDir and projected are)".into())
}

/// A token for the pod's ServiceAccount, bound to the pod, as the kubelet requests it.
async fn service_account_token(
    client: &kube::Client,
    pod: &Pod,
    audience: Option<String>,
    expiration: Option<i64>,
) -> Result<String, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let request: TokenRequest = serde_json::from_value(serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {
            "audiences": audience.into_iter().collect::<Vec<_>>(),
            "expirationSeconds": expiration,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                "name": pod.metadata.name, "uid": pod.metadata.uid},
        },
    }))
    .map_err(|e| format!("failed to fetch token: {e}"))?;
    api.create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("failed to fetch token: {e}"))?
        .status
        .and_then(|s| s.token)
        .ok_or_else(|| "failed to fetch token: empty TokenRequest status".into())
}

/// Replaces a mount path at the start of `s` (the whole value, or followed by `/`) by its
/// local folder; `--flag=/path` forms are rewritten too.
pub fn rewrite(s: &str, mounts: &[Mount]) -> String {
    let (head, value) = match s.split_once('=') {
        Some((h, v)) if h.starts_with('-') => (format!("{h}="), v),
        _ => (String::new(), s),
    };
    for m in mounts {
        if value == m.path {
            return format!("{head}{}", m.local);
        }
        if let Some(rest) = value.strip_prefix(&format!("{}/", m.path)) {
            return format!("{head}{}/{rest}", m.local);
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_mount_paths_only_at_the_start() {
        let mounts = vec![Mount {
            path: "/etc/nas/spec".into(),
            local: "/w/spec".into(),
        }];
        assert_eq!(
            rewrite("/etc/nas/spec/spec.json", &mounts),
            "/w/spec/spec.json"
        );
        assert_eq!(
            rewrite("--spec=/etc/nas/spec/a", &mounts),
            "--spec=/w/spec/a"
        );
        assert_eq!(rewrite("/etc/nas/specs", &mounts), "/etc/nas/specs");
        assert_eq!(rewrite("x/etc/nas/spec", &mounts), "x/etc/nas/spec");
    }
}

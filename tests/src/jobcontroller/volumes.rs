//! ConfigMap volumes as the kubelet mounts them: each key (or each `items` entry) becomes a file
//! under a per-pod folder, and the container's mount path is rewritten to that folder in argv
//! and env (the process runs on this machine, not in a container).
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec};
use kube::Api;

/// Writes the ConfigMap volumes `container` mounts under `dir/volumes/`; returns
/// `(mountPath, local folder)` pairs, longest mount path first (so nested mounts rewrite right).
pub async fn materialize(
    client: &kube::Client,
    ns: &str,
    pod: &PodSpec,
    container: &Container,
    dir: &Path,
) -> Vec<(String, String)> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(cm) = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .and_then(|v| v.config_map.as_ref())
        else {
            continue;
        };
        let local = dir.join("volumes").join(&mount.name);
        if let Err(e) = std::fs::create_dir_all(&local) {
            tracing::warn!("job controller double: {}: {e}", local.display());
            continue;
        }
        match api.get(&cm.name).await {
            Ok(map) => {
                let data = map.data.unwrap_or_default();
                let files: Vec<(String, String)> = match &cm.items {
                    Some(items) => items
                        .iter()
                        .filter_map(|i| data.get(&i.key).map(|v| (i.path.clone(), v.clone())))
                        .collect(),
                    None => data.into_iter().collect(),
                };
                for (path, value) in files {
                    let file = local.join(&path);
                    if let Some(parent) = file.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    if let Err(e) = std::fs::write(&file, value) {
                        tracing::warn!("job controller double: {}: {e}", file.display());
                    }
                }
            }
            // The kubelet would keep the pod waiting; the runner will report the missing file.
            Err(e) => tracing::warn!("job controller double: ConfigMap {ns}/{}: {e}", cm.name),
        }
        out.push((
            mount.mount_path.trim_end_matches('/').to_string(),
            local.to_string_lossy().into_owned(),
        ));
    }
    out.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    out
}

/// Replaces every mount path in `s` by its local folder.
pub fn rewrite(s: &str, mounts: &[(String, String)]) -> String {
    mounts.iter().fold(s.to_string(), |acc, (from, to)| {
        acc.replace(from.as_str(), to)
    })
}

//! Where `scripts/build-kube.sh` put the control-plane binaries. The pinned release is read from
//! `tests/kube/go.mod`, the one place it is written.
use std::path::PathBuf;

const GO_MOD: &str = include_str!("../../kube/go.mod");
const BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The pinned Kubernetes release, such as `v1.36.3`.
pub fn kube_version() -> &'static str {
    GO_MOD
        .lines()
        .find_map(|l| l.trim().strip_prefix("require k8s.io/kubernetes "))
        .map(str::trim)
        .expect("tests/kube/go.mod requires k8s.io/kubernetes")
}

/// The folder holding the binaries: `NAS_KUBE_BIN` when set, else the build script's cache
/// (`${NAS_KUBE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/nas-operator/kube}/<release>/bin`). An
/// error names what is missing and the script that builds it.
pub fn bin_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("NAS_KUBE_BIN") {
        Some(d) => PathBuf::from(d),
        None => {
            let cache = std::env::var_os("NAS_KUBE_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME")
                        .map(|c| PathBuf::from(c).join("nas-operator/kube"))
                })
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".cache/nas-operator/kube"))
                })
                .ok_or("neither NAS_KUBE_BIN, NAS_KUBE_CACHE nor HOME is set")?;
            cache.join(kube_version()).join("bin")
        }
    };
    let missing: Vec<&str> = BINARIES
        .into_iter()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!(
            "the Kubernetes {} control plane is not built: {} missing in {}; run scripts/build-kube.sh",
            kube_version(),
            missing.join(", "),
            dir.display()
        ))
    }
}

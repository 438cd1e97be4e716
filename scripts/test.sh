#!/usr/bin/env bash
# Runs every test: installs what the tests need (libtorch, helm, kubectl, kubernetes-validate,
# Fashion-MNIST), builds the Kubernetes control plane the end-to-end tests start (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler from Go modules; cached, see
# scripts/build-kube.sh), runs the Rust test suite of the whole workspace, then the packaging checks
# (chart lint and validation, generated manifests in sync). Prints one closing line
# "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/bootstrap-libtorch.sh
scripts/install-tools.sh
export PATH="$root/.tools/bin:$PATH"
NAS_KUBE_BIN=$(scripts/build-kube.sh)
export NAS_KUBE_BIN

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Two test threads: the machine this must fit has two cores, and several tests train networks.
cargo test --workspace --locked --no-fail-fast "$@" -- --test-threads=2 2>&1 | tee "$log" || status=$?
export NAS_OPERATOR_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/nas-operator"

if [ -x scripts/check-packaging.sh ]; then
  if scripts/check-packaging.sh; then echo "test result: ok. 1 passed; 0 failed (packaging)" | tee -a "$log"
  else echo "test result: FAILED. 0 passed; 1 failed (packaging)" | tee -a "$log"; status=1; fi
fi

read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] || status=1
exit "$status"

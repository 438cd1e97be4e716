#!/usr/bin/env bash
# Builds the Kubernetes control plane the end-to-end tests start (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) from the Go module proxy, at the release pinned in
# tests/kube/go.mod, into a cache folder keyed by that release:
#
#   ${NAS_KUBE_CACHE:-~/.cache/nas-operator/kube}/v1.36.3/bin
#
# A fresh clone on the same machine reuses it: the build is skipped when every binary there
# reports the pinned version. Prints the bin folder on stdout; logs go to stderr.
#
#   scripts/build-kube.sh           build if needed, print the folder
#   scripts/build-kube.sh --check   exit 1 (naming what is missing) instead of building
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$root/tests/kube"
log() { echo "build-kube: $*" >&2; }

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) log "unknown argument '$1' (expected --check)"; exit 2 ;;
esac

# The pinned versions are read from the two go.mod files, so they are written in one place.
kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$mod/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" { print $3 }' "$mod/etcd/go.mod")
[ -n "$kube_version" ] && [ -n "$etcd_version" ] || { log "cannot read the pinned versions from tests/kube/go.mod and tests/kube/etcd/go.mod"; exit 1; }

cache=${NAS_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nas-operator/kube}
bin="$cache/$kube_version/bin"

# Prints one line per binary that is missing or reports another version.
problems() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    if [ ! -x "$bin/$b" ]; then echo "$b is missing"; continue; fi
    "$bin/$b" --version 2>/dev/null | grep -qx "Kubernetes $kube_version" || echo "$b does not report Kubernetes $kube_version"
  done
  if [ ! -x "$bin/etcd" ]; then echo "etcd is missing"
  else "$bin/etcd" --version 2>/dev/null | grep -qx "etcd Version: ${etcd_version#v}" || echo "etcd does not report version ${etcd_version#v}"; fi
}

found=$(problems)
if [ -z "$found" ]; then
  log "Kubernetes $kube_version and etcd $etcd_version are ready in $bin"
  echo "$bin"
  exit 0
fi
if [ "$check_only" = 1 ]; then
  log "the control plane in $bin is not usable (run scripts/build-kube.sh):"
  echo "$found" | sed 's/^/  - /' >&2
  exit 1
fi

command -v go >/dev/null || { log "Go is missing: install Go 1.26 or newer (Debian: golang-go from bookworm-backports, or the official toolchain)"; exit 1; }
mkdir -p "$cache"
# A cold build needs the module cache (~1.5 GiB), the build cache (~3 GiB) and the binaries.
avail_kib=$(df -Pk "$cache" | awk 'NR == 2 { print $4 }')
need_kib=$((6 * 1024 * 1024))
if [ "${avail_kib:-0}" -lt "$need_kib" ]; then
  log "not enough disk: $((avail_kib / 1024)) MiB free under $cache, a cold build needs about $((need_kib / 1024)) MiB"
  exit 1
fi

log "building Kubernetes $kube_version and etcd $etcd_version into $bin:"
echo "$found" | sed 's/^/  - /' >&2
tmp="$cache/$kube_version/.tmp-$$"
rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

# What `make` stamps into a release build, so `--version` and the API's /version report it.
minor=${kube_version#v1.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$kube_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
(cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
(cd "$mod/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)

mkdir -p "$bin"
mv "$tmp"/* "$bin/"
found=$(problems)
if [ -n "$found" ]; then
  log "the fresh build failed its own check:"; echo "$found" | sed 's/^/  - /' >&2; exit 1
fi
log "built in $(( $(date +%s) - start )) s: $(cd "$bin" && du -sh -- * | tr '\t' ' ' | paste -sd, -)"
echo "$bin"

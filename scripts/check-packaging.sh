#!/usr/bin/env bash
# Packaging checks for the operator: the Helm chart lints (--strict) and renders, the rendered
# objects validate against the Kubernetes schemas (kubernetes-validate --strict), and the
# generated files in manifests/ and charts/nas-operator/crds/ match what `nas-operator crd` and
# `helm template` produce now. The images: every Dockerfile variant (the CUDA runner included)
# parses with BuildKit's own parser and linter and resolves its stages (deploy/dockerfile-check),
# and deploy/images.built records a build and run of the current image inputs
# (scripts/build-images.sh, which CI cannot run: it needs root, buildah and half an hour).
#
#   scripts/check-packaging.sh            check (exit 1 on any difference or failure)
#   scripts/check-packaging.sh --update   regenerate manifests/ and the chart's CRD, then check
#
# Needs `helm` and `kubernetes-validate` on PATH (scripts/install-tools.sh puts them in .tools/bin).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
chart=charts/nas-operator
update=false
[ "${1:-}" = "--update" ] && update=true

for tool in helm kubernetes-validate go; do
  command -v "$tool" >/dev/null || { echo "check-packaging: $tool not on PATH" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# The CRD, generated from the Rust types. The operator needs no libtorch.
# scripts/test.sh passes the binary its `cargo test --workspace` just built (NAS_OPERATOR_BIN):
# `cargo run -p nas-operator` alone unifies features differently and rebuilds kube from scratch.
if [ -n "${NAS_OPERATOR_BIN:-}" ] && [ -x "$NAS_OPERATOR_BIN" ]; then
  "$NAS_OPERATOR_BIN" crd > "$tmp/crd.yaml"
else
  cargo run --quiet --locked -p nas-operator -- crd > "$tmp/crd.yaml"
fi

render() { helm template nas-operator "$chart" --namespace nas-system --include-crds "$@"; }

if $update; then
  mkdir -p manifests/examples
  cp "$tmp/crd.yaml" manifests/crd.yaml
  cp "$tmp/crd.yaml" "$chart/crds/nassearches.yaml"
  render > manifests/install.yaml
  rm -f manifests/examples/*.yaml
  cp examples/*.yaml manifests/examples/
fi

same() { # same EXPECTED ACTUAL: a generated file must match
  if ! diff -u "$1" "$2" > "$tmp/diff"; then
    echo "check-packaging: $1 is out of date (run scripts/check-packaging.sh --update):" >&2
    head -40 "$tmp/diff" >&2
    fail=1
  fi
}
same manifests/crd.yaml "$tmp/crd.yaml"
same "$chart/crds/nassearches.yaml" "$tmp/crd.yaml"
render > "$tmp/install.yaml"
same manifests/install.yaml "$tmp/install.yaml"
for f in examples/*.yaml; do same "manifests/examples/$(basename "$f")" "$f"; done

# Lint and validate the default install and the optional features (ServiceMonitor is a
# Prometheus Operator kind the validator does not know, so it is linted only).
helm lint --strict "$chart" >/dev/null || { helm lint --strict "$chart"; fail=1; }
variants=(
  ""
  "--set leaderElection.enabled=true --set replicaCount=2 --set networkPolicy.enabled=true"
  "--set watchNamespaces={team-a,team-b} --set metrics.service.enabled=false"
)
i=0
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086
  helm lint --strict "$chart" $v >/dev/null || { echo "check-packaging: helm lint failed: $v" >&2; fail=1; }
  # shellcheck disable=SC2086
  render $v > "$tmp/variant-$i.yaml"
  if ! kubernetes-validate --strict --quiet "$tmp/variant-$i.yaml"; then
    echo "check-packaging: kubernetes-validate failed for variant '$v'" >&2
    fail=1
  fi
  i=$((i + 1))
done
helm lint --strict "$chart" --set metrics.serviceMonitor.enabled=true >/dev/null \
  || { echo "check-packaging: helm lint failed with the ServiceMonitor" >&2; fail=1; }
# A bad value must be refused by values.schema.json.
if helm template nas-operator "$chart" --set concurrency=0 >/dev/null 2>&1; then
  echo "check-packaging: values.schema.json accepted concurrency=0" >&2
  fail=1
fi

# Images.
(cd deploy/dockerfile-check && go build -o "$tmp/dockerfile-check" .)
for variant in "operator.Dockerfile" "runner.Dockerfile TORCH=cpu" "runner.Dockerfile TORCH=cuda"; do
  # shellcheck disable=SC2086
  set -- $variant
  "$tmp/dockerfile-check" "deploy/$1" "${@:2}" >/dev/null || fail=1
done
built=$(sed -n 's/^inputs-sha256 //p' deploy/images.built 2>/dev/null || true)
if [ "$built" != "$(scripts/build-images.sh --inputs-hash)" ]; then
  echo "check-packaging: deploy/ or the build changed since the images were last built and run:" \
    "run scripts/build-images.sh (as root, with buildah) and commit deploy/images.built" >&2
  fail=1
fi

if [ "$fail" = 0 ]; then echo "check-packaging: ok"; fi
exit "$fail"

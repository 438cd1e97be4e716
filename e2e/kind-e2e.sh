#!/usr/bin/env bash
# End-to-end run on a real (kind) cluster: builds the operator and runner images, creates a kind
# cluster, installs MinIO and the chart at charts/nas-operator, uploads a tiny data set, applies a
# tiny CPU search (e2e/search-tiny.yaml), waits for it to succeed and checks summary.json in
# MinIO. Exits non-zero (after printing diagnostics) on any failure.
#
# Needs: docker, kind, kubectl, helm, python3. Environment knobs:
#   CLUSTER=nas-e2e        kind cluster name           KEEP_CLUSTER=1  leave the cluster up
#   NAMESPACE=nas-e2e      namespace of the search     TIMEOUT=30m     wait for Succeeded
#   OPERATOR_IMAGE / RUNNER_IMAGE   use prebuilt images (skips the docker builds)
#   DATA_DIR               a Fashion-MNIST IDX folder to use instead of the generated tiny one
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
CLUSTER=${CLUSTER:-nas-e2e}
NAMESPACE=${NAMESPACE:-nas-e2e}
TIMEOUT=${TIMEOUT:-30m}
OPERATOR_IMAGE=${OPERATOR_IMAGE:-}
RUNNER_IMAGE=${RUNNER_IMAGE:-}
S3_NS=nas-e2e-s3
SEARCH=tiny
BUCKET=nas
PREFIX=runs

log() { echo "kind-e2e: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }
for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

workdir=$(mktemp -d)
diagnostics() {
  log "diagnostics:"
  kubectl get nassearches,jobs,pods -A -o wide || true
  kubectl describe nassearch "$SEARCH" -n "$NAMESPACE" || true
  kubectl get events -A --sort-by=.lastTimestamp | tail -n 50 || true
  kubectl logs -n nas-system -l app.kubernetes.io/name=nas-operator --tail=200 || true
  for p in $(kubectl get pods -n "$NAMESPACE" -o name 2>/dev/null); do
    echo "--- $p"; kubectl logs -n "$NAMESPACE" "$p" --tail=50 || true
  done
}
cleanup() {
  status=$?
  [ "$status" = 0 ] || diagnostics
  rm -rf "$workdir"
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    log "cluster $CLUSTER kept (KEEP_CLUSTER=1)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

# 1. Images.
if [ -z "$OPERATOR_IMAGE" ]; then
  OPERATOR_IMAGE=nas-operator:e2e
  log "building $OPERATOR_IMAGE"
  DOCKER_BUILDKIT=1 docker build -f deploy/operator.Dockerfile -t "$OPERATOR_IMAGE" .
fi
if [ -z "$RUNNER_IMAGE" ]; then
  RUNNER_IMAGE=nas-runner:e2e
  log "building $RUNNER_IMAGE"
  DOCKER_BUILDKIT=1 docker build -f deploy/runner.Dockerfile -t "$RUNNER_IMAGE" .
fi

# 2. Cluster.
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait 180s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$RUNNER_IMAGE"

# 3. MinIO, with fresh random credentials (never printed).
log "installing MinIO"
access=$(python3 -c 'import secrets; print("e2e" + secrets.token_hex(8))')
secret=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
kubectl create namespace "$S3_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
for ns in "$S3_NS" "$NAMESPACE"; do
  name=$([ "$ns" = "$S3_NS" ] && echo minio-root || echo nas-s3)
  kubectl create secret generic "$name" -n "$ns" \
    --from-literal=AWS_ACCESS_KEY_ID="$access" --from-literal=AWS_SECRET_ACCESS_KEY="$secret" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done
kubectl apply -f e2e/minio.yaml >/dev/null
kubectl rollout status -n "$S3_NS" deployment/minio --timeout=180s
kubectl wait -n "$S3_NS" --for=condition=Ready pod/mc --timeout=180s
mc() { kubectl exec -n "$S3_NS" mc -- sh -c "mc alias set local http://minio:9000 \"\$AWS_ACCESS_KEY_ID\" \"\$AWS_SECRET_ACCESS_KEY\" >/dev/null && $*"; }
mc "mc mb --ignore-existing local/$BUCKET"

# 4. The data set.
data="${DATA_DIR:-}"
if [ -z "$data" ]; then
  data="$workdir/tiny-fashion-mnist"
  python3 e2e/make-tiny-dataset.py "$data" --train 1000 --test 200
fi
log "uploading the data set from $data"
kubectl exec -n "$S3_NS" mc -- mkdir -p /tmp/data
for f in "$data"/*; do kubectl cp "$f" "$S3_NS/mc:/tmp/data/$(basename "$f")"; done
mc "mc cp --recursive /tmp/data/ local/$BUCKET/datasets/tiny-fashion-mnist/"

# 5. The operator.
log "installing the chart charts/nas-operator"
[ -d charts/nas-operator ] || die "charts/nas-operator is missing"
helm upgrade --install nas-operator charts/nas-operator \
  --namespace nas-system --create-namespace \
  --set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE##*:}" \
  --set image.pullPolicy=IfNotPresent \
  --wait --timeout 5m
kubectl wait --for=condition=Established crd/nassearches.nas.example.dev --timeout=60s

# 6. The search.
log "applying the tiny search"
NAMESPACE="$NAMESPACE" RUNNER_IMAGE="$RUNNER_IMAGE" python3 - e2e/search-tiny.yaml >"$workdir/search.yaml" <<'PY'
import os, string, sys
print(string.Template(open(sys.argv[1]).read()).substitute(os.environ))
PY
kubectl apply -f "$workdir/search.yaml"
log "waiting up to $TIMEOUT for Succeeded"
kubectl wait -n "$NAMESPACE" "nassearch/$SEARCH" --for=condition=Succeeded --timeout="$TIMEOUT"

# 7. The results.
uid=$(kubectl get -n "$NAMESPACE" "nassearch/$SEARCH" -o jsonpath='{.metadata.uid}')
key="$BUCKET/$PREFIX/$NAMESPACE/$SEARCH/$uid/summary.json"
log "checking $key"
mc "mc cat local/$key" >"$workdir/summary.json" || die "summary.json is missing at $key"
python3 - "$workdir/summary.json" <<'PY' || die "summary.json is not a valid summary"
import json, sys
s = json.load(open(sys.argv[1]))
assert isinstance(s, dict) and s, "summary.json is empty"
text = json.dumps(s)
assert "arch" in text, "summary.json names no architecture"
print("kind-e2e: summary.json ok:", text[:300], file=sys.stderr)
PY
best=$(kubectl get -n "$NAMESPACE" "nassearch/$SEARCH" -o jsonpath='{.status.best.arch}')
[ -n "$best" ] || die "status.best.arch is empty"
log "PASSED: best architecture $best"

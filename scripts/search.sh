#!/usr/bin/env bash
# Runs a NAS search on this machine: installs libtorch and the Fashion-MNIST package when missing,
# builds the runner, and runs `nas-runner local SEARCH.yaml [--out DIR]` (default
# examples/quickstart.yaml into runs/<name>). Any further arguments go to `nas-runner local`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/bootstrap-libtorch.sh
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "search: installing Debian's dataset-fashion-mnist" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "search: Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'" >&2
    exit 1
  fi
fi
search=${1:-examples/quickstart.yaml}
shift || true

exec cargo run -q -p nas-runner --bin nas-runner -- local "$search" "$@"

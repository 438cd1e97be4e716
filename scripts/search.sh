#!/usr/bin/env bash
# Runs a NAS search on this machine: installs libtorch and the Fashion-MNIST package when missing,
# builds the runner, and runs `nas-runner local SEARCH.yaml [--out DIR]` (default
# examples/quickstart.yaml into runs/<name>). Any further arguments go to `nas-runner local`.
#   scripts/search.sh                         quickstart on Fashion-MNIST (Debian's package)
#   scripts/search.sh DATA_DIR                quickstart on that data set (CIFAR-10 folder, ...)
#                                             into runs/quickstart-<folder name>
#   scripts/search.sh SEARCH.yaml [--data DIR] [--out DIR] ...
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
invoked_from=$PWD
args=()
if [ $# -gt 0 ] && [ -d "$1" ]; then
  data=$(cd "$1" && pwd)
  shift
  args=(examples/quickstart.yaml --data "$data" --out "runs/quickstart-$(basename "$data")" "$@")
elif [ $# -gt 0 ]; then
  search=$1
  shift
  # A YAML path is taken relative to where the script was called, else to the project.
  case "$search" in /*) ;; *) [ -f "$invoked_from/$search" ] && search="$invoked_from/$search" ;; esac
  args=("$search" "$@")
else
  args=(examples/quickstart.yaml)
fi
cd "$root"
scripts/bootstrap-libtorch.sh
needs_fashion=1
for a in "${args[@]}"; do [ "$a" = --data ] && needs_fashion=0; done
if [ "$needs_fashion" = 1 ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "search: installing Debian's dataset-fashion-mnist" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "search: Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'" >&2
    exit 1
  fi
fi
exec cargo run -q -p nas-runner --bin nas-runner -- local "${args[@]}"

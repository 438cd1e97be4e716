#!/usr/bin/env bash
# The operator at scale (issue 20), two parts:
#   1. planner and one reconcile with 1,000 score shards and 100,000 candidates observed, against
#      an in-process API server double (CPU time, API requests, status size): cargo bench;
#   2. one search of 200 score shards of a trivial runner on the real control plane (seconds from
#      apply to Succeeded, reconciles, API requests by method): an ignored e2e test.
# Prints both; BENCHMARKS.md's "Operator at scale" section holds the numbers of a run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/bootstrap-libtorch.sh
scripts/install-tools.sh >/dev/null
export PATH="$root/.tools/bin:$PATH"
NAS_KUBE_BIN=$(scripts/build-kube.sh)
export NAS_KUBE_BIN
echo "== planner and reconcile, 1,000 shards, 100,000 candidates (medians of ${NAS_SCALE_RUNS:-31})"
cargo bench -p nas-operator --bench scale 2>/dev/null
echo "== real control plane, 200 score shards of a trivial runner"
# The e2e harness takes the debug binaries cargo test builds.
cargo test --workspace --locked --no-run 2>/dev/null
cargo test --locked -p nas-e2e --test scale -- --ignored --nocapture 2>&1 | grep -E "^score shards|test result"

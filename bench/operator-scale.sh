#!/usr/bin/env bash
# The operator at scale (issue 20), two parts:
#   1. planner and one reconcile with 1,000 score shards and 100,000 candidates observed, against
#      an in-process API server double (CPU time, API requests, status size): cargo bench;
#   2. one search of 200 score shards of a trivial runner on the real control plane (seconds from
#      apply to Succeeded, reconciles, API requests by method): an ignored e2e test.
# Writes bench/operator-scale.md (committed; bench/report.py puts it in BENCHMARKS.md as section 7)
# and prints it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/bootstrap-libtorch.sh
scripts/install-tools.sh >/dev/null
export PATH="$root/.tools/bin:$PATH"
NAS_KUBE_BIN=$(scripts/build-kube.sh)
export NAS_KUBE_BIN
runs=${NAS_SCALE_RUNS:-31}
bench=$(NAS_SCALE_RUNS=$runs cargo bench -p nas-operator --bench scale 2>/dev/null)
# The e2e harness takes the debug binaries cargo test builds.
cargo test --workspace --locked --no-run 2>/dev/null
plane=$(cargo test --locked -p nas-e2e --test scale -- --ignored --nocapture 2>&1 | grep -E "^score shards")
out=bench/operator-scale.md
{
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) logical CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average at start $(cut -d' ' -f1-3 /proc/loadavg), by \`bench/operator-scale.sh\`."
  echo
  echo "**Planner and one reconcile**, one search of 100,000 candidates in 1,000 score shards, observed mid-score (600 shards done, 400 running) and at the end of score; the reconcile runs against an in-process API server double that answers with pre-serialized lists (JSON parsing included, no network); medians of $runs runs on one thread (\`cargo bench -p nas-operator --bench scale\`):"
  echo
  echo "| case | plan (ms) | Job + pods reduced (ms) | whole reconcile (ms) | API requests | pod list (bytes) | status (bytes) |"
  echo "|---|---|---|---|---|---|---|"
  echo "$bench" | awk -F'\t' 'NR > 1 && NF == 7 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }'
  echo
  echo "**On the real control plane** (\`cargo test -p nas-e2e --test scale -- --ignored\`): one search of 200 score shards whose runner is a trivial command (each stage writes a fixed termination summary and exits 0), so that the operator, the API server and the Job controller are what is measured; the operator's own counters (\`nas_operator_reconciles_total\`, \`nas_operator_api_requests_total\`):"
  echo
  echo "    $plane"
} > "$out"
cat "$out"

#!/usr/bin/env bash
# Scores the science pool with the runner, resumably: the first N architectures of the pool
# order (`reference/lists.py pool`: the authors' own draw of 100 first, then a uniform shuffle),
# split over WORKERS processes of one thread each, at low CPU priority.
#
#   bench/pool.sh [N]        (default 300; run it again, with a larger N, to go on)
#
# Writes bench/pool/SET-K-of-W.jsonl (committed, so a pool grows across sessions and
# machines; keep WORKERS the same to resume) and prints how many records each holds.
# `bench/run.sh` merges every set's shards for the science section (science.py joins a
# set's metrics to the angle_loss records of the same architecture).
# Environment: WORKERS (default 2), NAS_RUNNER (default target/release/nas-runner),
# DATA (default ../shared/data), METRICS (default angle_loss,params,synflow,naswot),
# SET (shard name, default shard; the default metrics' set), DEVICE (default cpu),
# NICE (default 10). The other baselines, as their own set:
#   SET=free METRICS=flops,grad_norm,snip,grasp,fisher,jacob_cov,ntk_cond bench/pool.sh 200
#   SET=lr METRICS=linear_regions bench/pool.sh 300
#   SET=zen METRICS=zen bench/pool.sh 300
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
N="${1:-300}"
case "$N" in ''|*[!0-9]*) echo "pool.sh: N must be a number, got '$N'" >&2; exit 2 ;; esac
WORKERS="${WORKERS:-2}"
RUNNER="${NAS_RUNNER:-$ROOT/target/release/nas-runner}"
DATA="${DATA:-$ROOT/../shared/data}"
METRICS="${METRICS:-angle_loss,params,synflow,naswot}"
DEVICE="${DEVICE:-cpu}"
SET="${SET:-shard}"
case "$SET" in ''|*[!a-z0-9_]*) echo "pool.sh: SET must be lowercase letters, digits or _, got '$SET'" >&2; exit 2 ;; esac
[ -x "$RUNNER" ] || { echo "pool.sh: no runner at $RUNNER (set NAS_RUNNER)" >&2; exit 2; }
[ -f "$DATA/nb201/accuracy.csv" ] || { echo "pool.sh: $DATA/nb201/accuracy.csv not found (set DATA)" >&2; exit 2; }
bench/setup.sh
mkdir -p bench/out bench/pool
bench/.venv/bin/python bench/reference/lists.py pool "$DATA/nb201/accuracy.csv" > bench/out/pool_archs.txt
pids=()
for k in $(seq 0 $((WORKERS - 1))); do
    shard="bench/out/pool_archs-$SET-$k-of-$WORKERS.txt"
    head -n "$N" bench/out/pool_archs.txt | awk -v k="$k" -v w="$WORKERS" '(NR - 1) % w == k' > "$shard"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n "${NICE:-10}" "$RUNNER" score --space nb201 \
        --archs "$shard" --metrics "$METRICS" --data "$DATA/cifar10" --seed 0 --device "$DEVICE" \
        --out "bench/pool/$SET-$k-of-$WORKERS.jsonl" --resume \
        2> "bench/out/pool-$SET-$k.log" &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
wc -l bench/pool/"$SET"-*-of-"$WORKERS".jsonl >&2
[ $status = 0 ] || echo "pool.sh: a worker failed (see bench/out/pool-$SET-*.log)" >&2
exit $status

#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md at the repository root.
#
#   bench/run.sh [--quick]
#
# Environment (all optional):
#   NAS_RUNNER  the nas-runner binary; default: target/release/nas-runner, built with
#               `cargo build --release -p nas-runner` (LIBTORCH must then be set) when missing.
#               Without a runner that has `score`, the "ours" columns read "not run".
#   THREADS     CPU threads per process, both sides (default 1)
#   RUNS        A/B repetitions (default 3; quick: 1)
#   DATA        the shared data folder (default ../shared/data beside the repository)
#   POOL        scores JSONL of a pool of NB201 archs for science.py (default bench/out/pool.jsonl,
#               made from the committed shards of bench/pool.sh when there are any)
#   GPU_DIR     results of bench/gpu.sh from a GPU machine (default bench/out/gpu)
#   NOTE        a sentence on the conditions, printed under the machine line of BENCHMARKS.md
#
# Quick mode: 2 of the 20 fixed archs, one A/B run, 2 training steps, 2,000 images decoded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$arg' (only --quick)" >&2; exit 2 ;;
    esac
done
THREADS="${THREADS:-1}"
RUNS="${RUNS:-$([ $QUICK = 1 ] && echo 1 || echo 3)}"
DATA="${DATA:-$ROOT/../shared/data}"
CIFAR="$DATA/cifar10"
POOL="${POOL:-bench/out/pool.jsonl}"
# The committed pool (bench/pool.sh) is the default science input.
if [ "$POOL" = bench/out/pool.jsonl ] && compgen -G "bench/pool/shard-*.jsonl" > /dev/null; then
    mkdir -p bench/out
    cat bench/pool/shard-*.jsonl > bench/out/pool.jsonl
fi
GPU_DIR="${GPU_DIR:-bench/out/gpu}"
OUTD=bench/out
RES=$OUTD/results
PY=bench/.venv/bin/python
REF=bench/reference
ALL_FREE=params,grad_norm,snip,grasp,fisher,jacob_cov,synflow,naswot,ntk_cond,zen
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
LOADAVG="$(cut -d" " -f1-3 /proc/loadavg)"

[ -d "$CIFAR" ] || { echo "run.sh: $CIFAR not found (set DATA)" >&2; exit 2; }
bench/setup.sh
rm -rf "$RES"
mkdir -p "$RES"
CMDS="$RES/commands.txt"
# Runs a command, logging it (with paths relative to the repository) for BENCHMARKS.md.
run() {
    printf '%q ' "$@" | sed "s#$ROOT/##g; s/ $//" >> "$CMDS"
    echo >> "$CMDS"
    "$@"
}
# Like run, under /usr/bin/time -v into $RES/mem_$1.txt.
run_mem() {
    local name="$1"
    shift
    printf '%q ' /usr/bin/time -v "$@" | sed "s#$ROOT/##g; s/ $//" >> "$CMDS"
    echo >> "$CMDS"
    /usr/bin/time -v -o "$RES/mem_$name.txt" "$@"
}

# Inputs both sides share: the fixed archs, the reference's batches, the pool order.
[ -f $OUTD/batches.safetensors ] || run $PY $REF/score.py --data "$CIFAR" \
    --save-batches $OUTD/batches.safetensors
[ -f $OUTD/pool_archs.txt ] || $PY $REF/lists.py pool "$DATA/nb201/accuracy.csv" \
    > $OUTD/pool_archs.txt
ARCHS=bench/archs20.txt
TRAIN_STEPS=20
DECODE_LIMIT=0
if [ $QUICK = 1 ]; then
    head -n 2 bench/archs20.txt > $OUTD/archs_quick.txt
    ARCHS=$OUTD/archs_quick.txt
    TRAIN_STEPS=2
    DECODE_LIMIT=2000
fi

# The runner ("ours").
RUNNER="${NAS_RUNNER:-$ROOT/target/release/nas-runner}"
if [ ! -x "$RUNNER" ] && [ -z "${NAS_RUNNER:-}" ] && [ -n "${LIBTORCH:-}" ]; then
    cargo build --release -p nas-runner >&2 || true
fi
HAVE_SCORE=0
if [ -x "$RUNNER" ] && "$RUNNER" score --help >/dev/null 2>&1; then HAVE_SCORE=1; fi
echo "runner: $([ $HAVE_SCORE = 1 ] && echo "$RUNNER" || echo "none with 'score'")" >&2

# ---- HOOKS: the runner side of each benchmark. Each writes the same JSON lines as its
# ---- reference counterpart, or nothing when the runner lacks the command.
ours_score() {  # $1 metrics, $2 archs file, $3 out file
    [ $HAVE_SCORE = 1 ] || return 0
    run_mem "score_$(basename "$3" .jsonl)" "$RUNNER" score --space nb201 --archs "$2" \
        --metrics "$1" --data "$CIFAR" --seed 0 --out "$3" \
        || echo "runner score failed: $1 on $2 (see $RES/mem_score_$(basename "$3" .jsonl).txt)" >&2
}
ours_train_speed() {  # HOOK: training images/s, batch 96 -> $RES/train_ours.jsonl
    if [ -x "$RUNNER" ] && "$RUNNER" train-bench --help >/dev/null 2>&1; then
        run_mem train_ours "$RUNNER" train-bench --nets "$1" --batch 96 --steps "$TRAIN_STEPS" \
            --warmup 1 --threads "$THREADS" > "$RES/train_ours.jsonl" \
            || echo "runner train-bench failed (see $RES/mem_train_ours.txt)" >&2
    fi
}
ours_decode_speed() {  # HOOK: stage-data's decode + resize images/s -> $RES/decode_ours.jsonl
    # (as decode_speed.py: same tar, limit and repeats; one line per size 32 and 64)
    if [ -x "$RUNNER" ] && "$RUNNER" decode-bench --help >/dev/null 2>&1; then
        run "$RUNNER" decode-bench --tar "$CIFAR/test.tar.gz" --limit "$DECODE_LIMIT" \
            --repeats "$DECODE_REPEATS" > "$RES/decode_ours.jsonl" \
            || echo "runner decode-bench failed" >&2
    fi
}
ours_parity() {  # the runner dumps each metric's initial weights and inputs; check.py recomputes
    # angle_loss over 5 SGD steps: the same computation as 50, while float rounding has not yet
    # grown (50 steps at lr 0.2 amplify last-bit differences, see BENCHMARKS.md); conv weights
    # channels-last on both sides, as the runner keeps them on the CPU.
    if [ $HAVE_SCORE = 1 ] && "$RUNNER" score --help 2>&1 | grep -q -- "--dump-dir"; then
        rm -rf "$OUTD/dumps"
        run "$RUNNER" score --space nb201 --archs "$ARCHS" --metrics "angle_loss,$ALL_FREE" \
            --data "$CIFAR" --seed 0 --option iterations=5 --dump-dir "$OUTD/dumps" \
            --out "$RES/parity_ours.jsonl" 2> /dev/null || echo "runner score --dump-dir failed" >&2
        run $PY $REF/check.py --dumps "$OUTD/dumps" --metrics "angle_loss,$ALL_FREE" \
            --compare "$RES/parity_ours.jsonl" --threads "$THREADS" --channels-last \
            --out "$RES/parity_ref.jsonl" 2> "$RES/parity.txt" || true
    else
        echo "Not run: the runner does not dump its initial weights yet (--dump-dir)." \
            > "$RES/parity.txt"
    fi
}
# ---- end of hooks

ref_score() {  # $1 metrics, $2 archs file, $3 out file
    rm -f "$3"
    run_mem "score_$(basename "$3" .jsonl)" $PY $REF/score.py --archs "$2" --metrics "$1" \
        --data $OUTD/batches.safetensors --seed 0 --threads "$THREADS" --out "$3"
}

# 1 + 2: angle_loss, then the training-free metrics, A/B interleaved (order alternates).
for r in $(seq 1 "$RUNS"); do
    if [ $((r % 2)) = 1 ]; then order="ours ref"; else order="ref ours"; fi
    for side in $order; do
        "${side}_score" angle_loss "$ARCHS" "$RES/angle_${side}_$r.jsonl"
        "${side}_score" "$ALL_FREE" "$ARCHS" "$RES/metrics_${side}_$r.jsonl"
    done
done
ours_parity
# How far float rounding alone moves the 50-step angle_loss (the reference on itself).
head -n "$([ $QUICK = 1 ] && echo 2 || echo 3)" "$ARCHS" > $OUTD/archs_sensitivity.txt
run $PY $REF/sensitivity.py --archs $OUTD/archs_sensitivity.txt --data $OUTD/batches.safetensors \
    > "$RES/sensitivity.jsonl" || echo "sensitivity run failed" >&2

# 3: training throughput.
NETS="nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NETS="$NETS,nb201:|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
NETS="$NETS,nb201:|nor_conv_1x1~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
NETS="$NETS,darts_v2"
run_mem train_ref $PY $REF/train_speed.py --nets "$NETS" --batch 96 --steps "$TRAIN_STEPS" \
    --warmup 1 --threads "$THREADS" > "$RES/train_ref.jsonl"
ours_train_speed "$NETS"

# 4: JPEG decode + resize.
DECODE_REPEATS="$([ $QUICK = 1 ] && echo 1 || echo 3)"
run $PY $REF/decode_speed.py --tar "$CIFAR/test.tar.gz" --limit "$DECODE_LIMIT" \
    --repeats "$DECODE_REPEATS" > "$RES/decode_pillow.jsonl"
ours_decode_speed

# 6: object store MB/s (S3 against the in-process server, local folder, plain copy).
# (.cargo/config.toml points cargo at the bootstrapped libtorch.)
run cargo bench -q -p nas-runner --features test-support --bench store_bench -- \
    "$([ $QUICK = 1 ] && echo 64 || echo 256)" "$([ $QUICK = 1 ] && echo 3 || echo 5)" \
    > "$RES/store.json" || { echo "store bench failed" >&2; rm -f "$RES/store.json"; }

# Science, when a pool has been scored.
# Science: over a scored pool when there is one, else the score-free baselines (#Param pick,
# best of the draw) over the whole space.
if [ -f "$POOL" ]; then
    run $PY bench/science.py --scores "$POOL" --data "$DATA/nb201" --json "$RES/science.json" \
        --md "$RES/science.md" > /dev/null
else
    run $PY bench/science.py --data "$DATA/nb201" --json "$RES/science.json" \
        --md "$RES/science.md" > /dev/null
fi

$PY - "$RES/meta.json" "$THREADS" "$RUNS" "$QUICK" "$LOADAVG" "$([ $HAVE_SCORE = 1 ] && echo "$RUNNER" | sed "s#$ROOT/##" || echo "not available")" "${NOTE:-}" <<'PYMETA'
import datetime, json, os, sys, torch
path, threads, runs, quick, load, runner, note = sys.argv[1:8]
json.dump({"threads": int(threads), "runs": int(runs), "quick": quick == "1", "runner": runner,
           "note": note,
           "torch": torch.__version__, "loadavg": load,
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")},
          open(path, "w"))
PYMETA
$PY bench/report.py --results "$RES" --gpu "$GPU_DIR" --out BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2

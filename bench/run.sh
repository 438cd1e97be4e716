#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md at the repository root.
#
#   bench/run.sh [--quick] [--resume]
#
# --resume keeps bench/out/results and skips every piece already finished there (a piece is
# one side's scores of one architecture in one run, or one whole other benchmark), so a full
# run can span sessions; it refuses results made with other settings.
#
# Environment (all optional):
#   NAS_RUNNER  the nas-runner binary; default: target/release/nas-runner, built with
#               `cargo build --release -p nas-runner` (LIBTORCH must then be set) when missing.
#               Without a runner that has `score`, the "ours" columns read "not run".
#   THREADS     CPU threads per process, both sides (default 1)
#   RUNS        A/B repetitions (default 3; quick: 1)
#   JOBS        architectures scored at once, each stream A/B interleaved (default 1; with
#               JOBS=2 on 2 CPUs both sides share the machine with another stream alike)
#   ITERS       angle_loss SGD steps on both sides (default: the paper's 50; smoke runs only)
#   FREE        the training-free metrics timed (default: all of them)
#   FREE_RUNS   A/B runs of the training-free metrics (default: RUNS; at most RUNS)
#   PARITY_ARCHS  how many of the fixed archs the parity check covers (default: all of them)
#   SENS_ARCHS  archs of the float sensitivity check (default 3; quick: 2)
#   TRAIN_STEPS timed training steps per network (default 20; quick: 2)
#   DATA        the shared data folder (default ../shared/data beside the repository)
#   POOL        scores JSONL of a pool of NB201 archs for science.py (default bench/out/pool.jsonl,
#               made from the committed shards of bench/pool.sh when there are any)
#   GPU_DIR     results of bench/gpu.sh from a GPU machine (default bench/out/gpu)
#   NOTE        a sentence on the conditions, printed under the machine line of BENCHMARKS.md
#   RESULTS, REPORT, PLOTS  the results folder (default bench/out/results), the report written
#               (default BENCHMARKS.md) and its SVG plots (default bench/plots beside
#               BENCHMARKS.md, else plots/ beside REPORT); SKIP_STORE=1 leaves out the object
#               store benchmark
#
# Quick mode: 2 of the 20 fixed archs, one A/B run, 2 training steps, 2,000 images decoded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
QUICK=0
RESUME=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --resume) RESUME=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$arg' (--quick, --resume)" >&2; exit 2 ;;
    esac
done
THREADS="${THREADS:-1}"
RUNS="${RUNS:-$([ $QUICK = 1 ] && echo 1 || echo 3)}"
JOBS="${JOBS:-1}"
ITERS="${ITERS:-}"
PARITY_ARCHS="${PARITY_ARCHS:-}"
SENS_ARCHS="${SENS_ARCHS:-$([ $QUICK = 1 ] && echo 2 || echo 3)}"
TRAIN_STEPS="${TRAIN_STEPS:-$([ $QUICK = 1 ] && echo 2 || echo 20)}"
FREE_RUNS="${FREE_RUNS:-$RUNS}"
for v in THREADS RUNS JOBS ITERS PARITY_ARCHS SENS_ARCHS TRAIN_STEPS FREE_RUNS; do
    case "${!v}" in *[!0-9]*) echo "run.sh: $v must be a whole number, got '${!v}'" >&2; exit 2 ;; esac
done
[ "$RUNS" -ge 1 ] && [ "$JOBS" -ge 1 ] || { echo "run.sh: RUNS and JOBS must be at least 1" >&2; exit 2; }
[ "$FREE_RUNS" -le "$RUNS" ] || FREE_RUNS=$RUNS
DATA="${DATA:-$ROOT/../shared/data}"
CIFAR="$DATA/cifar10"
POOL="${POOL:-bench/out/pool.jsonl}"
# The committed pool (bench/pool.sh) is the default science input.
# Every set's shards (science.py joins a set's metrics to the angle_loss records by arch).
if [ "$POOL" = bench/out/pool.jsonl ] && compgen -G "bench/pool/*.jsonl" > /dev/null; then
    mkdir -p bench/out
    cat bench/pool/*.jsonl > bench/out/pool.jsonl
fi
GPU_DIR="${GPU_DIR:-bench/out/gpu}"
OUTD=bench/out
RES="${RESULTS:-$OUTD/results}"
REPORT="${REPORT:-BENCHMARKS.md}"
PY=bench/.venv/bin/python
REF=bench/reference
ALL_FREE="${FREE:-params,grad_norm,snip,grasp,fisher,jacob_cov,synflow,naswot,ntk_cond,linear_regions,zen}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
LOADAVG="$(cut -d" " -f1-3 /proc/loadavg)"

[ -d "$CIFAR" ] || { echo "run.sh: $CIFAR not found (set DATA)" >&2; exit 2; }
bench/setup.sh
# The settings results depend on: a resumed run must have made its pieces with the same ones.
CONFIG="quick=$QUICK runs=$RUNS threads=$THREADS jobs=$JOBS iters=${ITERS:-50} free=$ALL_FREE"
CONFIG="$CONFIG parity_archs=${PARITY_ARCHS:-all} sens_archs=$SENS_ARCHS train_steps=$TRAIN_STEPS"
CONFIG="$CONFIG free_runs=$FREE_RUNS"
if [ $RESUME = 1 ] && [ -f "$RES/config.txt" ]; then
    if [ "$(cat "$RES/config.txt")" != "$CONFIG" ]; then
        echo "run.sh: --resume: $RES was made with '$(cat "$RES/config.txt")', not '$CONFIG'" \
            "(use the same --quick and environment, or run without --resume to start over)" >&2
        exit 2
    fi
else
    rm -rf "$RES"
    mkdir -p "$RES"
    echo "$CONFIG" > "$RES/config.txt"
fi
# One line per start (date, load average), for the report's conditions.
echo "$(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d" " -f1-3 /proc/loadavg)" >> "$RES/starts.txt"
CMDS="$RES/commands.txt"
# A piece is finished when its output exists and is not empty (outputs are written to .part
# and renamed, so a killed piece leaves nothing that looks finished).
finished() { [ -s "$1" ]; }
# Runs "$@" with stdout into $1 atomically, unless $1 is finished already.
produce() {
    local out="$1"
    shift
    finished "$out" && return 0
    "$@" > "$out.part" && mv "$out.part" "$out"
}
# Runs a command, logging it (with paths relative to the repository) for BENCHMARKS.md.
log_cmd() {  # once per command shape: a piece's arch and run read NN and RUN
    local line
    line="$(printf '%q ' "$@" | sed -E "s#$ROOT/##g; s/ $//; s#\.part( |$)#\1#g;
        s#arch/[0-9]+\.txt#arch/NN.txt#g; s#_[0-9]+_a[0-9]+\.jsonl#_RUN_aNN.jsonl#g;
        s#(mem_score_[a-z]+_[a-z]+)_[0-9]+_a[0-9]+#\1_RUN_aNN#g")"
    grep -qxF -- "$line" "$CMDS" 2>/dev/null || echo "$line" >> "$CMDS"
}
run() {
    log_cmd "$@"
    "$@"
}
# Like run, under /usr/bin/time -v into $RES/mem_$1.txt.
run_mem() {
    local name="$1"
    shift
    log_cmd /usr/bin/time -v "$@"
    /usr/bin/time -v -o "$RES/mem_$name.txt" "$@"
}

# Inputs both sides share: the fixed archs, the reference's batches, the pool order.
[ -f $OUTD/batches.safetensors ] || run $PY $REF/score.py --data "$CIFAR" \
    --save-batches $OUTD/batches.safetensors
[ -f $OUTD/pool_archs.txt ] || $PY $REF/lists.py pool "$DATA/nb201/accuracy.csv" \
    > $OUTD/pool_archs.txt
ARCHS=bench/archs20.txt
DECODE_LIMIT=0
if [ $QUICK = 1 ]; then
    head -n 2 bench/archs20.txt > $OUTD/archs_quick.txt
    ARCHS=$OUTD/archs_quick.txt
    DECODE_LIMIT=2000
fi
PARITY_LIST=$ARCHS
if [ -n "$PARITY_ARCHS" ]; then
    PARITY_LIST=$OUTD/archs_parity.txt
    grep . "$ARCHS" | head -n "$PARITY_ARCHS" > "$PARITY_LIST"
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
ours_score() {  # $1 metrics, $2 archs file, $3 out file (written as $3.part, then renamed)
    [ $HAVE_SCORE = 1 ] || return 0
    rm -f "$3.part"
    run_mem "score_$(basename "$3" .jsonl)" "$RUNNER" score --space nb201 --archs "$2" \
        --metrics "$1" --data "$CIFAR" --seed 0 ${ITERS:+--option iterations=$ITERS} \
        --out "$3.part" && mv "$3.part" "$3" \
        || echo "runner score failed: $1 on $2 (see $RES/mem_score_$(basename "$3" .jsonl).txt)" >&2
}
ours_train_speed() {  # HOOK: training images/s, batch 96 -> $RES/train_ours.jsonl
    if [ -x "$RUNNER" ] && "$RUNNER" train-bench --help >/dev/null 2>&1; then
        run_mem train_ours "$RUNNER" train-bench --nets "$1" --batch 96 --steps "$TRAIN_STEPS" \
            --warmup 1 --threads "$THREADS" > "$RES/train_ours.jsonl.part" \
            && mv "$RES/train_ours.jsonl.part" "$RES/train_ours.jsonl" || echo "runner train-bench failed (see $RES/mem_train_ours.txt)" >&2
    fi
}
ours_decode_speed() {  # HOOK: stage-data's decode + resize images/s -> $RES/decode_ours.jsonl
    # (as decode_speed.py: same tar, limit and repeats; one line per size 32 and 64)
    if [ -x "$RUNNER" ] && "$RUNNER" decode-bench --help >/dev/null 2>&1; then
        log_cmd "$RUNNER" decode-bench --tar "$CIFAR/test.tar.gz" --limit "$DECODE_LIMIT" \
            --repeats "$DECODE_REPEATS"
        produce "$RES/decode_ours.jsonl" "$RUNNER" decode-bench --tar "$CIFAR/test.tar.gz" \
            --limit "$DECODE_LIMIT" --repeats "$DECODE_REPEATS" || echo "runner decode-bench failed" >&2
    fi
}
ours_parity() {  # the runner dumps each metric's initial weights and inputs; check.py recomputes
    # angle_loss over 5 SGD steps: the same computation as 50, while float rounding has not yet
    # grown (50 steps at lr 0.2 amplify last-bit differences, see BENCHMARKS.md); conv weights
    # channels-last on both sides, as the runner keeps them on the CPU.
    if [ $HAVE_SCORE = 1 ] && "$RUNNER" score --help 2>&1 | grep -q -- "--dump-dir"; then
        rm -rf "$OUTD/dumps" "$RES"/parity*.part
        run "$RUNNER" score --space nb201 --archs "$PARITY_LIST" --metrics "angle_loss,$ALL_FREE" \
            --data "$CIFAR" --seed 0 --option iterations=5 --dump-dir "$OUTD/dumps" \
            --out "$RES/parity_ours.jsonl" 2> /dev/null || echo "runner score --dump-dir failed" >&2
        run $PY $REF/check.py --dumps "$OUTD/dumps" --metrics "angle_loss,$ALL_FREE" \
            --compare "$RES/parity_ours.jsonl" --threads "$THREADS" --channels-last \
            --out "$RES/parity_ref.jsonl.part" 2> "$RES/parity.txt.part" || true
        mv "$RES/parity_ref.jsonl.part" "$RES/parity_ref.jsonl" 2>/dev/null || true
        mv "$RES/parity.txt.part" "$RES/parity.txt"
    else
        echo "Not run: the runner does not dump its initial weights yet (--dump-dir)." \
            > "$RES/parity.txt"
    fi
}
# ---- end of hooks

ref_score() {  # $1 metrics, $2 archs file, $3 out file (written as $3.part, then renamed)
    rm -f "$3.part"
    run_mem "score_$(basename "$3" .jsonl)" $PY $REF/score.py --archs "$2" --metrics "$1" \
        --data $OUTD/batches.safetensors --seed 0 --threads "$THREADS" ${ITERS:+--iters $ITERS} \
        --out "$3.part" && mv "$3.part" "$3" \
        || echo "reference score failed: $1 on $2 (see $RES/mem_score_$(basename "$3" .jsonl).txt)" >&2
}

# 1 + 2: angle_loss, then the training-free metrics, A/B interleaved per architecture: the
# two sides of one arch run back to back (so they see the same machine), the side that goes
# first alternates by arch and run. Pieces are $RES/{angle,metrics}_{side}_{run}_aNN.jsonl.
N_ARCHS=$(grep -c . "$ARCHS")
PIECES_NOTE="# score pieces: NN is each line of $ARCHS (as $OUTD/arch/NN.txt), RUN is 1 to $RUNS"
grep -qxF -- "$PIECES_NOTE" "$CMDS" 2>/dev/null || echo "$PIECES_NOTE" >> "$CMDS"
mkdir -p $OUTD/arch
for a in $(seq 1 "$N_ARCHS"); do
    grep . "$ARCHS" | sed -n "${a}p" > "$OUTD/arch/$(printf %02d "$a").txt"
done
score_stream() {  # $1 stream number: the archs a with (a - 1) % JOBS == $1, every run
    local r a id side order
    for r in $(seq 1 "$RUNS"); do
        for a in $(seq 1 "$N_ARCHS"); do
            [ $(((a - 1) % JOBS)) = "$1" ] || continue
            id=$(printf %02d "$a")
            if [ $(((r + a) % 2)) = 0 ]; then order="ours ref"; else order="ref ours"; fi
            for side in $order; do
                finished "$RES/angle_${side}_${r}_a$id.jsonl" \
                    || "${side}_score" angle_loss "$OUTD/arch/$id.txt" "$RES/angle_${side}_${r}_a$id.jsonl"
                [ "$r" -le "$FREE_RUNS" ] || continue
                finished "$RES/metrics_${side}_${r}_a$id.jsonl" \
                    || "${side}_score" "$ALL_FREE" "$OUTD/arch/$id.txt" "$RES/metrics_${side}_${r}_a$id.jsonl"
            done
        done
    done
}
pids=()
for j in $(seq 0 $((JOBS - 1))); do
    score_stream "$j" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "scores: $(ls "$RES"/angle_*_a*.jsonl "$RES"/metrics_*_a*.jsonl 2>/dev/null | wc -l) of" \
    "$((2 * (RUNS + FREE_RUNS) * N_ARCHS)) pieces finished" >&2
# The checks that are not timed (parity, float sensitivity) run one after the other; with
# JOBS >= 2 they run beside the timed benchmarks below, which then share the machine with
# one stream of other work, as the score pieces did.
untimed_checks() {
    if finished "$RES/parity.txt" && finished "$RES/parity_ref.jsonl"; then :; else ours_parity; fi
    # How far float rounding alone moves the 50-step angle_loss (the reference on itself).
    head -n "$SENS_ARCHS" "$ARCHS" > $OUTD/archs_sensitivity.txt
    log_cmd $PY $REF/sensitivity.py --archs $OUTD/archs_sensitivity.txt --data $OUTD/batches.safetensors
    produce "$RES/sensitivity.jsonl" $PY $REF/sensitivity.py --archs $OUTD/archs_sensitivity.txt \
        --data $OUTD/batches.safetensors ${ITERS:+--iters $ITERS} || echo "sensitivity run failed" >&2
}
untimed_pid=
if [ "$JOBS" -ge 2 ]; then
    untimed_checks &
    untimed_pid=$!
else
    untimed_checks
fi

# 3: training throughput.
NETS="nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NETS="$NETS,nb201:|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
NETS="$NETS,nb201:|nor_conv_1x1~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
NETS="$NETS,darts_v2"
finished "$RES/train_ref.jsonl" || { run_mem train_ref $PY $REF/train_speed.py --nets "$NETS" \
    --batch 96 --steps "$TRAIN_STEPS" --warmup 1 --threads "$THREADS" > "$RES/train_ref.jsonl.part" \
    && mv "$RES/train_ref.jsonl.part" "$RES/train_ref.jsonl"; }
finished "$RES/train_ours.jsonl" || ours_train_speed "$NETS"

# 4: JPEG decode + resize.
DECODE_REPEATS="$([ $QUICK = 1 ] && echo 1 || echo 3)"
log_cmd $PY $REF/decode_speed.py --tar "$CIFAR/test.tar.gz" --limit "$DECODE_LIMIT" \
    --repeats "$DECODE_REPEATS"
produce "$RES/decode_pillow.jsonl" $PY $REF/decode_speed.py --tar "$CIFAR/test.tar.gz" \
    --limit "$DECODE_LIMIT" --repeats "$DECODE_REPEATS"
ours_decode_speed

# 6: object store MB/s (S3 against the in-process server, local folder, plain copy).
# (.cargo/config.toml points cargo at the bootstrapped libtorch.)
STORE_ARGS=("$([ $QUICK = 1 ] && echo 64 || echo 256)" "$([ $QUICK = 1 ] && echo 3 || echo 5)")
if [ "${SKIP_STORE:-0}" != 1 ]; then
    log_cmd cargo bench -q -p nas-runner --features test-support --bench store_bench -- "${STORE_ARGS[@]}"
    produce "$RES/store.json" cargo bench -q -p nas-runner --features test-support --bench store_bench \
        -- "${STORE_ARGS[@]}" || { echo "store bench failed" >&2; rm -f "$RES/store.json.part"; }
fi

[ -z "$untimed_pid" ] || wait "$untimed_pid" || echo "run.sh: the parity or sensitivity check failed" >&2

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

$PY - "$RES/meta.json" "$THREADS" "$RUNS" "$QUICK" "$LOADAVG" "$([ $HAVE_SCORE = 1 ] && echo "$RUNNER" | sed "s#$ROOT/##" || echo "not available")" "${NOTE:-}" "$JOBS" "${ITERS:-50}" "$RES/starts.txt" "$FREE_RUNS" "$TRAIN_STEPS" <<'PYMETA'
import datetime, json, os, sys, torch
path, threads, runs, quick, load, runner, note, jobs, iters, starts = sys.argv[1:11]
free_runs, train_steps = int(sys.argv[11]), int(sys.argv[12])
starts = [ln.strip() for ln in open(starts) if ln.strip()]
json.dump({"threads": int(threads), "runs": int(runs), "quick": quick == "1", "runner": runner,
           "note": note, "jobs": int(jobs), "iters": int(iters), "starts": starts,
           "free_runs": free_runs, "train_steps": train_steps,
           "torch": torch.__version__, "loadavg": load,
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")},
          open(path, "w"))
PYMETA
# The plots live beside the report: bench/plots for BENCHMARKS.md (committed with it).
PLOTS="${PLOTS:-$([ "$REPORT" = BENCHMARKS.md ] && echo bench/plots || echo "$(dirname "$REPORT")/plots")}"
$PY bench/report.py --results "$RES" --gpu "$GPU_DIR" --out "$REPORT" --plots "$PLOTS"
echo "wrote $REPORT" >&2

#!/usr/bin/env bash
# One run on a lent GPU machine (the `device` tool), prepared so that it fits one short lease:
#   1. the reference's seconds per metric over the 20 fixed archs (two passes: warm-up, timed);
#   2. the reference's training images/s (three NB201 nets, DARTS_V2, batch 96);
#   3. a pool of NB201 archs (the authors' draw first) scored by the reference with angle_loss and
#      every training-free metric, by WORKERS processes, until BUDGET seconds after the start.
# Needs bench/out/batches.safetensors and bench/out/pool_archs.txt (bench/run.sh makes them;
# carry bench/out). Writes under $OUT (or bench/out/gpu): at most 8 files, as the tool returns.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
O="${OUT:-bench/out/gpu}"
mkdir -p "$O"
PY="${PY:-python3}"
DEV="${DEV:-cuda}"
WORKERS="${WORKERS:-14}"
BUDGET="${BUDGET:-430}"
ITERS="${ITERS:-50}"
R=bench/reference
DATA=bench/out/batches.safetensors
ALL=angle_loss,params,grad_norm,snip,grasp,fisher,jacob_cov,synflow,naswot,ntk_cond,linear_regions,zen
export PYTHONUNBUFFERED=1
T0=$(date +%s)
{
    date -u
    nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    echo "cpus: $(nproc)"
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
} > "$O/machine.txt" 2>&1
for pass in 1 2; do
    $PY $R/score.py --archs "${ARCHS20:-bench/archs20.txt}" --metrics "$ALL" --data $DATA --device "$DEV" \
        --iters "$ITERS" --out "$O/ref20_pass$pass.jsonl" 2>>"$O/log.txt"
done
echo "timing done at $(( $(date +%s) - T0 )) s" >> "$O/log.txt"
NETS="nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NETS="$NETS,nb201:|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
NETS="$NETS,nb201:|nor_conv_1x1~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
[ "${SKIP_DARTS:-0}" = 1 ] || NETS="$NETS,darts_v2"
$PY $R/train_speed.py --nets "$NETS" --device "$DEV" --batch 96 --steps "${TRAIN_STEPS:-30}" --warmup "${TRAIN_WARMUP:-5}" \
    > "$O/train_ref.jsonl" 2>>"$O/log.txt"
LEFT=$(( BUDGET - ($(date +%s) - T0) ))
echo "pool: $WORKERS workers, $LEFT s" >> "$O/log.txt"
TMP=$(mktemp -d)
for w in $(seq 0 $((WORKERS - 1))); do
    $PY $R/score.py --archs bench/out/pool_archs.txt --shard "$w/$WORKERS" --metrics "$ALL" \
        --data $DATA --device "$DEV" --iters "$ITERS" --deadline "$LEFT" \
        --out "$TMP/pool-$w.jsonl" 2>>"$TMP/log-$w.txt" &
done
wait
cat "$TMP"/pool-*.jsonl > "$O/pool.jsonl"
tail -n 2 "$TMP"/log-*.txt >> "$O/log.txt"
echo "done at $(( $(date +%s) - T0 )) s, pool $(wc -l < "$O/pool.jsonl") archs" >> "$O/log.txt"

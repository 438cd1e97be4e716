#!/usr/bin/env bash
# Accuracy side by side (issue 22): the same NB201 network, recipe and epochs trained on CIFAR-10
# by the runner (`nas-runner local`: stage-data, our loader and augmentation, the evaluate stage's
# final training) and by the PyTorch reference trainer (bench/reference/train_cifar.py, its own
# Pillow + torchvision-style data path), SEEDS seeds each. The runner's runs go one after the
# other beside the reference's (two queues, one thread each); then bench/train_accuracy.py
# writes bench/train-accuracy.md (section 10 of BENCHMARKS.md) and its learning-curve plot.
#
#   bench/train-accuracy.sh                       # 10 epochs, seeds 0 and 1
#   EPOCHS=2 SEEDS="0" bench/train-accuracy.sh    # a smoke run of the harness
#
# Environment: DATA (CIFAR-10 folder, default ../shared/data/cifar10), EPOCHS (10), SEEDS
# ("0 1"), CHANNELS (16), CELLS (1), OUT (bench/out/train-accuracy), NAS_RUNNER (default
# target/release/nas-runner, built when missing), ONLY (ours, reference or reference_staged:
# those runs only, no report), DIAGNOSE (set: also train the reference on the pixels the
# runner staged, which tells decoding from training), NOTE (a sentence on the conditions, for
# the report). Resumable: a finished run is not run again while what made it is unchanged; a run
# made by another runner binary or another version of the reference scripts is run again (each
# run's <run>.stamp holds the hash of its makers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${DATA:-$ROOT/../shared/data/cifar10}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-0 1}
CHANNELS=${CHANNELS:-16}
CELLS=${CELLS:-1}
OUT=${OUT:-$ROOT/bench/out/train-accuracy}
NAS_RUNNER=${NAS_RUNNER:-$ROOT/target/release/nas-runner}
PY=$ROOT/bench/.venv/bin/python
# NB201 index 0 of the benchmark: average pooling, 1x1 convolutions and skips in one cell. The
# runner's search is handed it as its one candidate (the artifact `candidates.jsonl`, which a
# search reuses when present), so that every seed trains this cell, not one sampled by the seed.
ARCH='|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'

[ -f "$DATA/train.tar.gz" ] && [ -f "$DATA/test.tar.gz" ] ||
  { echo "train-accuracy: $DATA has no train.tar.gz and test.tar.gz (CIFAR-10 JPEG tarballs)" >&2; exit 2; }
[ -x "$PY" ] || bench/setup.sh
if [ ! -x "$NAS_RUNNER" ]; then
  cargo build --release --locked -p nas-runner
fi
export LD_LIBRARY_PATH=$ROOT/.libtorch/current/torch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$OUT"

# What made a run: the runner binary, the reference scripts, or both for the reference on the
# runner's pixels. A result kept from another version must not be compared as if it were this one.
maker_ours() { sha256sum "$NAS_RUNNER" | cut -c1-16; }
maker_reference() {
  cat bench/reference/{train_cifar,nb201,cifar}.py | sha256sum | cut -c1-16; }
maker_reference_staged() { echo "$(maker_reference)+$(maker_ours)"; }
# done_by_current RUN SIDE RESULT...: true when every RESULT exists and RUN's stamp names today's makers;
# otherwise removes what RUN left, so that it runs again from the start.
done_by_current() {
  local run=$1 side=$2 stamp
  shift 2
  stamp=$(cat "$OUT/$run.stamp" 2>/dev/null || true)
  if [ "$stamp" = "$("maker_$side")" ] && ls "$@" >/dev/null 2>&1; then return 0; fi
  if [ -e "$OUT/$run.stamp" ] || ls "$@" >/dev/null 2>&1; then
    echo "train-accuracy: $run was made by another version (${stamp:-no stamp}): running it again" >&2
  fi
  rm -rf "$OUT/$run" "$OUT/$run.json" "$OUT/$run.stamp"
  return 1
}

spec() { # seed -> the NASSearch of the runner's side
  cat <<EOF
apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata:
  name: accuracy-seed$1
spec:
  runner:
    image: local
  dataset:
    source: $DATA
    format: cifar10
    resolution: 32
  space:
    name: nb201
    channels: $CHANNELS
    cells: $CELLS
  sampling:
    candidates: 1
    seed: $1
  metrics:
    names: [params]
  selection:
    topK: 1
  train:
    preset: short
    overrides: {epochs: 1, channels: $CHANNELS, cells: $CELLS}
  evaluate:
    preset: nb201
    overrides: {epochs: $EPOCHS, channels: $CHANNELS, cells: $CELLS}
  artifacts:
    bucket: local
    credentials:
      fromEnvironment: true
EOF
}

ours() { # seed
  local dir=$OUT/ours-seed$1
  done_by_current "ours-seed$1" ours "$dir/eval/report.json" && return 0
  spec "$1" >"$OUT/ours-seed$1.yaml"
  mkdir -p "$dir"
  printf '{"schema":1,"index":0,"arch":"%s"}\n' "$ARCH" >"$dir/candidates.jsonl"
  /usr/bin/time -v -o "$OUT/ours-seed$1.time" env OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 \
    "$NAS_RUNNER" local "$OUT/ours-seed$1.yaml" --device cpu --quiet --out "$dir" \
    >"$OUT/ours-seed$1.log" 2>&1
  maker_ours >"$OUT/ours-seed$1.stamp"
}

reference() { # seed
  local out=$OUT/ref-seed$1.json
  done_by_current "ref-seed$1" reference "$out" && return 0
  /usr/bin/time -v -o "$OUT/ref-seed$1.time" "$PY" bench/reference/train_cifar.py \
    --data "$DATA" --arch "$ARCH" --channels "$CHANNELS" --cells "$CELLS" --epochs "$EPOCHS" \
    --seed "$1" --threads 1 --out "$out.part" >"$OUT/ref-seed$1.log" 2>&1
  mv "$out.part" "$out"
  maker_reference >"$OUT/ref-seed$1.stamp"
}

reference_staged() { # seed: the reference trainer on the pixels the runner decoded and staged
  local out=$OUT/refstaged-seed$1.json
  done_by_current "refstaged-seed$1" reference_staged "$out" && return 0
  /usr/bin/time -v -o "$OUT/refstaged-seed$1.time" "$PY" bench/reference/train_cifar.py \
    --data "$DATA" --staged "$OUT/ours-seed$1/data" --arch "$ARCH" --channels "$CHANNELS" \
    --cells "$CELLS" --epochs "$EPOCHS" --seed "$1" --threads 1 --out "$out.part" \
    >"$OUT/refstaged-seed$1.log" 2>&1
  mv "$out.part" "$out"
  maker_reference_staged >"$OUT/refstaged-seed$1.stamp"
}

echo "train-accuracy: seeds $SEEDS, $EPOCHS epochs; the runner's runs beside the reference's" >&2
queue() { # side -> its runs, one after the other
  for seed in $SEEDS; do
    "$1" "$seed" || { echo "train-accuracy: $1 failed on seed $seed, see its log in $OUT" >&2; return 1; }
  done
}
case ${ONLY:-} in
  ours | reference | reference_staged) queue "$ONLY"; exit ;;
  "") queue ours & o=$!; queue reference & r=$!; wait $o && wait $r ;;
  *) echo "train-accuracy: ONLY is ours, reference or reference_staged, not '$ONLY'" >&2; exit 2 ;;
esac
# The decoder check: the reference trainer once more, on the runner's decoded pixels.
[ -z "${DIAGNOSE:-}" ] || queue reference_staged
"$PY" bench/train_accuracy.py --out-dir "$OUT" --arch "$ARCH" --seeds $SEEDS --data "$DATA" \
  --markdown bench/train-accuracy.md --plot bench/plots/train-accuracy.svg --note "${NOTE:-}"

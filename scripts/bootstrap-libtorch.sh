#!/usr/bin/env bash
# Provides libtorch 2.11.0 (the version tch 0.24 binds) from the Python package registry in a
# project-local, git-ignored folder. No other download source is used.
#
#   scripts/bootstrap-libtorch.sh          CPU (default): torch wheel without its CUDA libraries,
#                                          plus the two small CUDA wheels libtorch_cpu.so links
#   scripts/bootstrap-libtorch.sh --cuda   the full wheel set (cuBLAS, cuDNN, NCCL, ...); build the
#                                          runner with `--features cuda` to really link libtorch_cuda
#   scripts/bootstrap-libtorch.sh --check  verify only; exit 1 when something is missing or wrong
#
# Idempotent: with everything present and intact it only checks file sizes against the wheels'
# RECORD files (seconds). A missing, half-installed, corrupted or wrong-version folder is
# reinstalled with a message that says what was found.
set -euo pipefail

TORCH_VERSION=2.11.0
# Pinned to what torch 2.11.0 itself pins (see its METADATA).
CUDA_RUNTIME=nvidia-cuda-runtime==13.0.96
CUDA_CUPTI=nvidia-cuda-cupti==13.0.85

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
variant=cpu
check_only=0
for arg in "$@"; do
  case "$arg" in
    --cuda) variant=cuda ;;
    --cpu) variant=cpu ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bootstrap-libtorch: unknown argument '$arg' (expected --cpu, --cuda or --check)" >&2; exit 2 ;;
  esac
done

dest="$root/.libtorch/$variant"   # pip --target folder: torch/, nvidia/, *.dist-info
link="$root/.libtorch/current"    # what .cargo/config.toml's LIBTORCH points at (through torch/)
stamp="$dest/.nas-bootstrap-complete"
log() { echo "bootstrap-libtorch: $*" >&2; }

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { log "python3 is missing: install it (Debian: apt-get install python3 python3-pip)"; exit 1; }

# Prints nothing when the folder is intact, else one line per problem.
problems() {
  local d=$1
  [ -d "$d" ] || { echo "folder $d does not exist"; return; }
  [ -f "$d/.nas-bootstrap-complete" ] || echo "no completion stamp (an earlier install was interrupted)"
  local v
  v=$(sed -n "s/^__version__ = '\(.*\)'$/\1/p" "$d/torch/version.py" 2>/dev/null || true)
  case "$v" in
    "$TORCH_VERSION"|"$TORCH_VERSION"+*) ;;
    "") echo "torch/version.py missing or unreadable" ;;
    *) echo "found torch $v, tch 0.24 needs $TORCH_VERSION" ;;
  esac
  # Every file the wheels installed, with its size, is listed in their RECORD files.
  "$python" - "$d" <<'PY'
import csv, glob, os, sys
d = sys.argv[1]
records = glob.glob(os.path.join(d, "*.dist-info", "RECORD"))
if not records:
    print("no wheel RECORD files found")
bad = 0
for rec in records:
    with open(rec, newline="") as f:
        for row in csv.reader(f):
            # Console scripts are recorded as ../../bin/x; --target puts them elsewhere.
            if len(row) < 3 or not row[2] or row[0].startswith("../"):
                continue
            path = os.path.join(d, row[0])
            try:
                size = os.path.getsize(path)
            except OSError:
                bad += 1
                if bad <= 5:
                    print(f"missing file {row[0]}")
                continue
            if size != int(row[2]):
                bad += 1
                if bad <= 5:
                    print(f"wrong size for {row[0]}: {size} bytes, wheel says {row[2]}")
if bad > 5:
    print(f"... {bad} damaged files in all")
PY
}

point_link() {
  mkdir -p "$root/.libtorch"
  ln -sfn "$variant" "$link"
}

found=$(problems "$dest")
if [ -z "$found" ]; then
  point_link
  log "libtorch $TORCH_VERSION ($variant) is ready in .libtorch/$variant"
  exit 0
fi
if [ "$check_only" = 1 ]; then
  log "libtorch in .libtorch/$variant is not usable:"
  echo "$found" | sed 's/^/  - /' >&2
  exit 1
fi
if [ -d "$dest" ]; then
  log "repairing .libtorch/$variant, which is not usable:"
  echo "$found" | sed 's/^/  - /' >&2
else
  log "installing libtorch $TORCH_VERSION ($variant) into .libtorch/$variant from the Python package registry"
fi

"$python" -m pip --version >/dev/null 2>&1 || { log "pip is missing: install it (Debian: apt-get install python3-pip)"; exit 1; }
tmp="$root/.libtorch/.tmp-$variant-$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
if [ "$variant" = cpu ]; then
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --no-compile --no-deps --target "$tmp" \
    "torch==$TORCH_VERSION" "$CUDA_RUNTIME" "$CUDA_CUPTI"
else
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --no-compile --target "$tmp" "torch==$TORCH_VERSION"
fi
touch "$tmp/.nas-bootstrap-complete"
found=$(problems "$tmp")
if [ -n "$found" ]; then
  log "the fresh install failed its own check:"; echo "$found" | sed 's/^/  - /' >&2; exit 1
fi
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
point_link
log "libtorch $TORCH_VERSION ($variant) installed in .libtorch/$variant"

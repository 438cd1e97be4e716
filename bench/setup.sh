#!/usr/bin/env bash
# Creates bench/.venv (git-ignored) with the PyTorch eager reference's dependencies.
# Idempotent: a venv whose pinned packages already import is left alone.
# torch==2.11.0 comes from PyPI with its full dependency wheel set (the default Linux wheel is a
# CUDA build; the reference runs on CPU unless a GPU is present, which is fine).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"
TORCH_VERSION="2.11.0"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$TORCH_VERSION" <<'PYCHECK' 2>/dev/null
import sys
import torch, numpy, PIL, safetensors, scipy, matplotlib  # noqa: F401
sys.exit(0 if torch.__version__.split("+")[0] == sys.argv[1] else 1)
PYCHECK
then
    echo "bench/.venv ready (torch $TORCH_VERSION)" >&2
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet \
    "torch==$TORCH_VERSION" numpy pillow safetensors scipy matplotlib
"$VENV/bin/python" -c "import torch, numpy, PIL, safetensors, scipy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'pillow', PIL.__version__, 'scipy', scipy.__version__)" >&2

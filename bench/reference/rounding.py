"""How much float rounding alone moves a training-free metric on one exchange file: the
reference's own value with NCHW conv weights, with channels-last ones (same arithmetic, other
kernels) and in float64 (the value the float32 ones approximate), through `check.py`'s own
computation.

    python rounding.py --dump bench/out/dumps/00017-grasp.safetensors [--metric grasp]

Use it on a parity mismatch: when the float32 variants already spread wider than the tolerance,
the value is dominated by cancellation and the mismatch is rounding, not a different definition.
Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import check as C  # noqa: E402
import exchange  # noqa: E402
import metrics as M  # noqa: E402

VARIANTS = (("float32", "nchw"), ("float32", "channels_last"), ("float64", "nchw"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dump", required=True)
    p.add_argument("--metric", help="default: the file's own metric")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dump = exchange.load(a.dump)
    name = a.metric or dump.metric
    if name not in M.TRAINING_FREE:
        p.error(f"--metric: expected one of {', '.join(sorted(M.TRAINING_FREE))}, got {name!r}")
    if dump.metric is not None and name != dump.metric:
        p.error(f"--metric: {a.dump} holds the inputs of {dump.metric} only, not {name}")
    for dtype_name, layout in VARIANTS:
        rec = C.compute(dump, [name], "cpu", layout == "channels_last", getattr(torch, dtype_name))
        print(json.dumps({"arch": dump.arch, "metric": name, "dtype": dtype_name,
                          "conv_weights": layout, "value": rec["metrics"][name]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

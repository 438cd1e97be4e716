"""How much float rounding alone moves angle_loss: the reference's own metric on the same initial
weights, batch and draws, computed with NCHW conv weights and with channels-last ones (the same
arithmetic, other kernels, so other last bits), and with 1 and 2 threads.

    python sensitivity.py --archs FILE --data bench/out/batches.safetensors [--iters 50]

Prints one JSON line per arch and variant, then the largest relative spread of cos and loss.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import metrics as M  # noqa: E402
from nb201 import NB201, kaiming_fan_in_  # noqa: E402
from score import arch_seed, load_batches  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--iters", type=int, default=50)
    a = p.parse_args(argv)
    data = load_batches(a.data)
    xa, ya, mean, std = data["angle.images"], data["angle.labels"], data["mean"], data["std"]
    spread = {"cos": 0.0, "loss": 0.0}
    for arch in [ln.strip() for ln in open(a.archs) if ln.strip() and not ln.startswith("#")]:
        s = arch_seed(0, arch)
        init = NB201(arch)
        kaiming_fan_in_(init, torch.Generator().manual_seed(s))
        aug = M.draw_augmentation(a.iters, xa.shape[0], 4, torch.Generator().manual_seed(s + 1))
        values = []
        for threads, layout in [(1, "nchw"), (1, "channels_last"), (2, "nchw")]:
            torch.set_num_threads(threads)
            net = NB201(arch)
            net.load_state_dict(init.state_dict())
            if layout == "channels_last":
                net = net.to(memory_format=torch.channels_last)
            v = M.angle_loss(net, xa, ya, mean, std, aug=aug, iters=a.iters)
            values.append(v)
            print(json.dumps({"arch": arch, "threads": threads, "layout": layout, **v}), flush=True)
        for part in spread:
            xs = [v[part] for v in values]
            scale = max(abs(x) for x in xs)  # 0 when every run is degenerate (cos 0)
            spread[part] = max(spread[part], (max(xs) - min(xs)) / scale if scale else 0.0)
    print(json.dumps({"max_relative_spread": spread}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

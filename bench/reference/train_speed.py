"""Training throughput of the reference (images/s): NB201 networks and DARTS_V2 on CIFAR-shaped
batches, SGD momentum 0.9, cross-entropy (DARTS: + 0.4 auxiliary loss, drop-path 0.2, gradient
clipping 5), BN in training mode.

    python train_speed.py --nets nb201:ARCH,...,darts_v2 --batch 96 --steps 20 --warmup 3
                          [--device cpu] [--threads 1]

Prints one JSON line per network: {"net", "params", "batch", "steps", "seconds", "images_per_s"}.
The batch is random normal data: the step's arithmetic does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from darts import DartsCifar  # noqa: E402
from nb201 import NB201  # noqa: E402


def step_fn(name: str, device: str):
    if name == "darts_v2":
        net = DartsCifar().to(device)
        params = net.param_count()

        def loss_of(x, y):
            logits, aux = net(x)
            return F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
    else:
        net = NB201(name.removeprefix("nb201:")).to(device)
        params = sum(p.numel() for p in net.parameters())

        def loss_of(x, y):
            return F.cross_entropy(net(x), y)

    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        return loss

    return step, params


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nets", required=True, help="comma list: nb201:ARCH or darts_v2")
    p.add_argument("--batch", type=int, default=96)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for name in [n for n in a.nets.split(",") if n]:
        step, params = step_fn(name, a.device)
        x = torch.randn(a.batch, 3, 32, 32, device=a.device)
        y = torch.randint(0, 10, (a.batch,), device=a.device)
        for _ in range(a.warmup):
            step(x, y)
        sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
        sync()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step(x, y)
        sync()
        dt = time.perf_counter() - t0
        print(json.dumps({"net": name, "params": params, "batch": a.batch, "steps": a.steps,
                          "seconds": round(dt, 4),
                          "images_per_s": round(a.batch * a.steps / dt, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""NB201 FLOPs by forward hooks, as NAS-Bench-201's cost tables count them, on every cell.

AutoDL-Projects' counter (`get_model_infos`, which made the benchmark's cost tables) sums hooks
on convolutions and linear layers only: output elements x kernel area x input channels / groups,
plus one per output element where there is a bias; its pooling hooks are left out of the sum,
and BN, ReLU and additions have none. This script counts the reference network's conv and
linear layers that way, with forward hooks, for one 32x32 image, on all 15,625 cells, and
compares each with the closed form the runner's own count is pinned to on every cell
(runner/tests/spaces.rs): 7,783,050 + 15 x (2,359,296 n3 + 262,144 n1).

Networks are built on PyTorch's meta device: shapes only, so the hooks see every layer's
output size without allocating or initialising weights.

    bench/.venv/bin/python bench/reference/flops_check.py

Prints one line: cells checked, mismatches (the first few named), seconds.
"""
import itertools
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb201 import NB201  # noqa: E402

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def arch_string(ops):
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def hook_count(net: nn.Module, side: int = 32) -> int:
    total = 0

    def conv(m: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        per_out = kh * kw * m.in_channels // m.groups + (1 if m.bias is not None else 0)
        total += out.numel() // out.shape[0] * per_out  # per image: Cout x H x W outputs

    def linear(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() // out.shape[0] * (m.in_features + (1 if m.bias is not None else 0))

    handles = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear))
    with torch.no_grad():
        net(torch.empty(1, 3, side, side, device="meta"))
    for h in handles:
        h.remove()
    return total


def closed_form(ops) -> int:
    n3 = ops.count("nor_conv_3x3")
    n1 = ops.count("nor_conv_1x1")
    return 7_783_050 + 15 * (2_359_296 * n3 + 262_144 * n1)


def main() -> int:
    started = time.time()
    checked, bad = 0, []
    for ops in itertools.product(OPS, repeat=6):
        arch = arch_string(ops)
        with torch.device("meta"):
            net = NB201(arch)
        got, want = hook_count(net), closed_form(list(ops))
        checked += 1
        if got != want:
            bad.append(f"{arch}: hooks {got}, closed form {want}")
    secs = time.time() - started
    print(f"{checked} cells checked, {len(bad)} mismatches, {secs:.0f} s")
    for line in bad[:5]:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

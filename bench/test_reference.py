"""Checks of the PyTorch reference (network, pruning, augmentation, exchange format, metrics).

    bench/.venv/bin/python bench/test_reference.py [--data ../shared/data/nb201]

Small and single-threaded; prints 'N passed, N failed' and exits 1 on a failure.
"""

import argparse
import csv
import math
import os
import random
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))

import check as C  # noqa: E402
import exchange  # noqa: E402
import metrics as M  # noqa: E402
from nb201 import (NB201, kaiming_fan_in_, live_edges, param_count, param_count_formula,  # noqa
                   parse_arch)

DEAD = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"
# Node 1 is zero (fed by `none` only), yet the conv edge 3<-1 from it is live: its BN's shift
# trains away from zero. Node 2 reaches node 3 only through `none`: edges 2<-0, 2<-1 are dead.
ZERO_FED_CONV = "|none~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(HERE, "../../shared/data/nb201"))
    a = p.parse_args()
    torch.set_num_threads(1)
    results = []

    def check(name, cond, detail=""):
        results.append(bool(cond))
        print(f"{'ok  ' if cond else 'FAIL'} {name} {detail}")

    with open(os.path.join(a.data, "accuracy.csv")) as f:
        archs = [r["arch"] for r in csv.DictReader(f)]
    sample = random.Random(0).sample(archs, 60)
    bad = [s for s in sample if param_count(NB201(s)) != param_count_formula(parse_arch(s))]
    check("#Param = 72,656 + 65K + 243,040 n3 + 28,000 n1 on 60 archs", not bad, bad[:1])
    check("#Param with 100 classes", param_count(NB201(DEAD, 100)) ==
          param_count_formula(parse_arch(DEAD), 100))
    for badarch in ("|nor_conv_3x3~0|+|none~0|", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"):
        try:
            parse_arch(badarch)
            check(f"rejects {badarch}", False)
        except ValueError as e:
            check(f"rejects {badarch}", "arch" in str(e))
    # DEAD: node 2 gets only conv1x1 from node 0 (edge 2<-1 none); node 3 <- avgpool(0),
    # conv3x3(2); edge 1<-0 feeds node 1, whose out-edges are both none: dead.
    check("live edges", live_edges(parse_arch(DEAD)) == [False, True, False, True, False, True])

    # Pruning is exact in BN training mode: same logits and gradients, bit for bit.
    torch.manual_seed(0)
    x = torch.randn(6, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    outs = []
    for prune in (False, True):
        torch.manual_seed(1)
        net = NB201(DEAD)
        kaiming_fan_in_(net, torch.Generator().manual_seed(1))
        out = net(x, M.Record(prune=prune))
        torch.nn.functional.cross_entropy(out, y).backward()
        outs.append((out.detach(), net.stem.conv.weight.grad.clone(),
                     net.classifier.weight.grad.clone()))
    check("pruned forward identical", torch.equal(outs[0][0], outs[1][0]))
    check("pruned gradients identical",
          torch.equal(outs[0][1], outs[1][1]) and torch.equal(outs[0][2], outs[1][2]))

    # Augmentation: offset 4 without flip is the image; flip mirrors; offset 0 shows padding.
    imgs = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    mean = torch.tensor([0.5, 0.4, 0.3], dtype=torch.float64)
    std = torch.tensor([0.2, 0.25, 0.3], dtype=torch.float64)
    padded = M.normalize(torch.nn.functional.pad(imgs, (4, 4, 4, 4)), mean, std)
    base = M.normalize(imgs, mean, std)
    four = torch.full((2,), 4, dtype=torch.int64)
    got = M.augment(padded, torch.tensor([0, 1], dtype=torch.uint8), four, four, 32, 32)
    check("crop at 4 = image", torch.equal(got[0], base[0]))
    check("flip mirrors", torch.equal(got[1], base[1].flip(2)))
    zero = torch.zeros(2, dtype=torch.int64)
    got = M.augment(padded, torch.zeros(2, dtype=torch.uint8), zero, zero, 32, 32)
    pad_val = (-mean / std).float()
    check("crop at 0 shows padding = -mean/std",
          torch.allclose(got[0, :, 0, 0], pad_val) and torch.equal(got[0, :, 4:, 4:],
                                                                   base[0, :, :28, :28]))

    # angle_loss: all-skip cell is degenerate without training; short runs are deterministic.
    check("all-skip degenerate", M.angle_loss(NB201(ALL_SKIP), imgs, y[:2], mean, std) ==
          M.DEGENERATE)
    aug = M.draw_augmentation(3, 6, 4, torch.Generator().manual_seed(3))
    imgs6 = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(4))
    vals = []
    for _ in range(2):
        net = NB201(DEAD)
        kaiming_fan_in_(net, torch.Generator().manual_seed(5))
        vals.append(M.angle_loss(net, imgs6, y, mean, std, aug=aug, iters=3, threshold=2.0))
    check("angle_loss deterministic", vals[0] == vals[1] and not vals[0]["degenerate"], vals[0])
    net = NB201(DEAD)
    kaiming_fan_in_(net, torch.Generator().manual_seed(5))
    v = M.angle_loss(net, imgs6, y, mean, std, aug=aug, iters=3, threshold=2.0, prune=False)
    check("angle_loss pruned = unpruned", v == vals[0])
    check("a conv edge from a zero node is live",
          live_edges(parse_arch(ZERO_FED_CONV)) == [False, False, False, True, True, False])
    zvals = []
    for prune in (True, False):
        net = NB201(ZERO_FED_CONV)
        kaiming_fan_in_(net, torch.Generator().manual_seed(5))
        zvals.append(M.angle_loss(net, imgs6, y, mean, std, aug=aug, iters=3, threshold=2.0,
                                  prune=prune))
    check("angle_loss pruned = unpruned with a zero-fed conv", zvals[0] == zvals[1], zvals)

    # An output that ignores the input (nodes 1 and 2 fed only by none): jacob_cov is NaN.
    flat = NB201("|none~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    check("jacob_cov of an input-independent net is NaN",
          math.isnan(M.jacob_cov(flat, M.normalize(imgs6, mean, std), y)))

    # Exchange format: round trip gives identical weights and identical metric values.
    with tempfile.TemporaryDirectory() as d:
        net = NB201(DEAD)
        kaiming_fan_in_(net, torch.Generator().manual_seed(6))
        path = os.path.join(d, "a.safetensors")
        exchange.save(path, net, imgs6, y, mean, std, aug=aug)
        dump = exchange.load(path)
        back = dump.build()
        check("round trip: arch and weights",
              dump.arch == DEAD and all(torch.equal(v, back.state_dict()[k])
                                        for k, v in net.state_dict().items()))
        xn = M.normalize(imgs6, mean, std)
        check("round trip: snip identical", M.snip(net, xn, y) == M.snip(back, xn, y))
        before = {k: v.clone() for k, v in net.state_dict().items()}
        check("round trip: synflow identical", M.synflow(net, xn, y) == M.synflow(back, xn, y))
        check("synflow restores the weights",
              all(torch.equal(v, net.state_dict()[k]) for k, v in before.items()))
        dump.arch = ALL_SKIP
        try:
            dump.build()
            check("mismatched arch rejected", False)
        except ValueError as e:
            check("mismatched arch rejected", "cells.0.edges.0.conv.weight" in str(e), str(e)[:80])

    # check.py's comparison: relative tolerance per value, angle_loss parts and flag.
    ours = {"metrics": {"angle_loss": {"cos": 0.5, "loss": 2.0, "degenerate": False},
                        "synflow": 1e30}}
    near = {"metrics": {"angle_loss": {"cos": 0.50004, "loss": 2.0001, "degenerate": False},
                        "synflow": 1.00009e30}}
    far = {"metrics": {"angle_loss": {"cos": 0.5001, "loss": 2.0, "degenerate": True},
                       "synflow": 1.0002e30}}
    check("compare: within 1e-4 agrees", C.compare(ours, near, 1e-4) == [])
    check("compare: each difference named", len(C.compare(ours, far, 1e-4)) == 3,
          C.compare(ours, far, 1e-4))
    # The runner writes non-finite values as JSON null (an input-independent network gives
    # naswot -inf, jacob_cov NaN); null matches any non-finite reference value and nothing else.
    deg = {"metrics": {"naswot": float("-inf"), "jacob_cov": float("nan"), "synflow": 1.0,
                       "angle_loss": {"cos": float("nan"), "loss": 2.0, "degenerate": True}}}
    nulls = {"metrics": {"naswot": None, "jacob_cov": None, "synflow": None,
                         "angle_loss": {"cos": None, "loss": 2.0, "degenerate": True}}}
    check("compare: null is non-finite", C.compare(deg, nulls, 1e-4) == ["synflow: reference 1.0 "
          "runner None"], C.compare(deg, nulls, 1e-4))
    check("compare: inf matches only itself",
          C.compare({"metrics": {"x": float("-inf")}}, {"metrics": {"x": float("inf")}}, 1e-4)
          != [] and C.compare({"metrics": {"x": float("inf")}}, {"metrics": {"x": float("inf")}},
                              1e-4) == [])

    # TE-NAS linear regions: an all-none cell leaves only the cell input's ReLU pattern (hooked
    # on every edge's conv candidates), so the count is that of the crops' own signs.
    import tenas_lr as L
    g = torch.Generator().manual_seed(3)
    imgs = torch.randn(300, 3, 8, 8, generator=g)
    draws = L.draw_crops(300, (3, 8, 8), g)
    x = L.crops(imgs, draws)
    check("crops: channel, row, column", torch.equal(
        x[5, 0], imgs[5, draws[5, 0], draws[5, 1]:draws[5, 1] + 3, draws[5, 2]:draws[5, 2] + 3]))
    thin = L.ThinSupernet("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    L.kaiming_fan_in_(thin, g)
    codes = [tuple((r > 0).tolist()) for r in x.reshape(300, 9)]
    expected = sum(1.0 / codes.count(c) for c in codes)
    got = L.linear_regions(thin, x)
    check("linear regions: all-none cell = the crops' sign patterns", abs(got - expected) < 1e-9,
          (got, expected))
    try:
        thin.load_exchange({"stem.conv.weight": torch.zeros(1, 1, 3, 3)})
        check("thin weights: a stem is rejected", False)
    except ValueError as e:
        check("thin weights: a stem is rejected", "stem.conv.weight" in str(e), str(e))

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

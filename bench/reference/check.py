"""`check`: recompute metrics from exchange files and compare them with the runner's scores.

    python check.py --dumps DIR_OR_FILES... --metrics angle_loss,synflow [--compare RUNNER.jsonl]
                    [--rtol 1e-4] [--out FILE] [--device cpu] [--threads 1] [--channels-last]

Each exchange file (bench/README.md) gives one architecture's initial weights and inputs; every
requested metric (only the file's own when its metadata names a `metric`) is computed on its
whole `input.*` batch (angle_loss with its `aug.*` draws, zen
with `zen.z1`/`zen.z2`). With `--compare`, each value is matched by arch with the runner's
record and must agree within `rtol` relative (angle_loss: cos and loss each, degenerate equal);
the exit status is 1 when any does not.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import exchange  # noqa: E402
import metrics as M  # noqa: E402
import tenas_lr  # noqa: E402


def compute(dump: exchange.Dump, names, device: str, channels_last: bool = False,
            dtype: torch.dtype = torch.float32) -> dict:
    """`dtype` other than float32 is for the training-free metrics (rounding.py)."""
    rec = {"arch": dump.arch, "metrics": {}, "seconds": {}}
    x = M.normalize(dump.images, dump.mean, dump.std).to(device, dtype)
    y = dump.labels.to(device)
    if dump.metric is not None:  # a one-metric file: only that metric, on its own inputs
        names = [n for n in names if n == dump.metric]
    for name in names:
        if name == "linear_regions":  # TE-NAS's thin network, not the dumped arch's full one
            if dump.crops is None:
                raise ValueError(f"{dump.arch}: linear_regions needs the file's crops.draws")
            net = tenas_lr.ThinSupernet(dump.arch, dump.num_classes)
            net.load_exchange(dump.weights)
            t0 = time.perf_counter()
            v = tenas_lr.linear_regions(net.to(device), tenas_lr.crops(x, dump.crops))
            rec["metrics"][name] = v
            rec["seconds"][name] = round(time.perf_counter() - t0, 6)
            continue
        net = dump.build().to(device, dtype)
        if channels_last:  # as the runner stores conv weights on the CPU
            net = net.to(memory_format=torch.channels_last)
        t0 = time.perf_counter()
        if name == "angle_loss":
            v = M.angle_loss(net, dump.images, dump.labels, dump.mean, dump.std, aug=dump.aug,
                             iters=dump.aug[0].shape[0] if dump.aug is not None else 50)
        elif name == "zen":
            v = M.zen(net, x, y, noise=dump.zen_noise)
        else:
            v = M.TRAINING_FREE[name](net, x, y)
        rec["metrics"][name] = v
        rec["seconds"][name] = round(time.perf_counter() - t0, 6)
    return rec


def close(a: float, b, rtol: float) -> bool:
    """`a` is the reference's value; `b` the runner's, where JSON `null` (None) stands for any
    non-finite value (NaN, +-inf), as the runner writes them."""
    if b is None:
        return not math.isfinite(a)
    b = float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)


def compare(ours: dict, theirs: dict, rtol: float) -> list:
    """Mismatch messages for one architecture (empty when everything agrees)."""
    bad = []
    for name, v in ours["metrics"].items():
        if name not in theirs.get("metrics", {}):
            bad.append(f"{name}: missing in runner record")
            continue
        w = theirs["metrics"][name]
        if isinstance(v, dict):
            if bool(v["degenerate"]) != bool(w.get("degenerate")):
                bad.append(f"{name}.degenerate: reference {v['degenerate']} runner "
                           f"{w.get('degenerate')}")
            for part in ("cos", "loss"):
                if part not in w or not close(float(v[part]), w[part], rtol):
                    bad.append(f"{name}.{part}: reference {v[part]!r} runner {w.get(part)!r}")
        elif not close(float(v), w, rtol):
            bad.append(f"{name}: reference {v!r} runner {w!r}")
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dumps", nargs="+", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--compare")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--out")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channels-last", action="store_true",
                   help="conv weights channels-last, as the runner keeps them on the CPU: the same "
                        "kernels, so the same rounding (NCHW and channels-last differ by ~1e-4 "
                        "after a few SGD steps, in PyTorch alone)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = [m.strip() for m in a.metrics.split(",") if m.strip()]
    files = []
    for d in a.dumps:
        files.extend(sorted(glob.glob(os.path.join(d, "*.safetensors"))) if os.path.isdir(d)
                     else [d])
    theirs = {}
    if a.compare:
        with open(a.compare) as f:
            for ln in f:
                if ln.strip():
                    r = json.loads(ln)
                    theirs[r["arch"]] = r
    out = open(a.out, "w") if a.out else sys.stdout
    failures = 0
    for path in files:
        rec = compute(exchange.load(path), names, a.device, a.channels_last)
        out.write(json.dumps(rec) + "\n")
        out.flush()
        if a.compare:
            other = theirs.get(rec["arch"])
            bad = ["no runner record"] if other is None else compare(rec, other, a.rtol)
            for msg in bad:
                print(f"MISMATCH {os.path.basename(path)} {rec['arch']}: {msg}", file=sys.stderr)
            failures += bool(bad)
    if a.compare:
        print(f"{len(files) - failures} agree, {failures} differ (rtol {a.rtol})", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

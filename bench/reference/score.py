"""`score`: the reference's counterpart of `nas-runner score` (same JSON lines).

    python score.py --archs FILE --metrics angle_loss,synflow --data PATH [--seed S]
                    [--out FILE] [--device cpu|cuda] [--threads N] [--shard I/N]
                    [--deadline SECONDS] [--dump-dir DIR]

One JSON line per architecture: {"arch", "metrics": {name: value}, "seconds": {name: s}} plus
"error": {name: message} for a metric that failed (the run goes on). `--out` is appended to and
architectures already in it are skipped, so a run can be resumed. `--data` is the CIFAR-10
folder of ../shared/data (train.tar.gz is read) or a batch file made by `make_batches`.

Each architecture's weights come from Kaiming fan-in init seeded by (seed, arch); angle_loss
draws its augmentation from the same seed; Zen-NAS's noise likewise. `--dump-dir` writes, per
architecture, the exchange file (bench/README.md) holding those initial weights and inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cifar  # noqa: E402
import exchange  # noqa: E402
import metrics as M  # noqa: E402
import tenas_lr  # noqa: E402
from nb201 import NB201, kaiming_fan_in_  # noqa: E402

FREE_BATCH = 128  # images drawn for the training-free metrics (each takes DEFAULT_BATCH of them)


def make_batches(cifar_dir: str, seed: int = 0) -> dict:
    """angle_loss's 100 training images (10 per class, seed) and a 128-image training batch for
    the training-free metrics (13 per class minus the last two classes' 13th, seed + 1)."""
    tar = os.path.join(cifar_dir, "train.tar.gz")
    ai, al, _ = cifar.balanced_sample(tar, 10, seed)
    fi, fl, _ = cifar.balanced_sample(tar, 13, seed + 1)
    g = torch.Generator().manual_seed(seed + 1)
    perm = torch.randperm(fi.shape[0], generator=g)[:FREE_BATCH]
    return {
        "angle.images": ai, "angle.labels": al,
        "free.images": fi[perm].contiguous(), "free.labels": fl[perm].contiguous(),
        "mean": torch.tensor(cifar.CIFAR10_MEAN, dtype=torch.float64),
        "std": torch.tensor(cifar.CIFAR10_STD, dtype=torch.float64),
    }


def load_batches(path: str) -> dict:
    if path.endswith(".safetensors"):
        return load_file(path)
    return make_batches(path)


def arch_seed(seed: int, arch: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(arch.encode())) % (2**62)


def score_one(arch: str, names, data: dict, seed: int, device: str, dump_dir=None,
              iters: int = 50) -> dict:
    s = arch_seed(seed, arch)
    torch.manual_seed(s)
    init = NB201(arch)
    kaiming_fan_in_(init, torch.Generator().manual_seed(s))
    mean, std = data["mean"], data["std"]
    xa, ya = data["angle.images"], data["angle.labels"]
    aug = M.draw_augmentation(iters, xa.shape[0], 4, torch.Generator().manual_seed(s + 1))
    xf = M.normalize(data["free.images"], mean, std)
    yf = data["free.labels"]
    zen_b = M.DEFAULT_BATCH["zen"]
    gz = torch.Generator().manual_seed(s + 2)
    zen_noise = (torch.randn((zen_b,) + tuple(xf.shape[1:]), generator=gz),
                 torch.randn((zen_b,) + tuple(xf.shape[1:]), generator=gz))
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        path = os.path.join(dump_dir, f"{zlib.crc32(arch.encode()):08x}.safetensors")
        exchange.save(path, init, xa, ya, mean, std, aug=aug, zen_noise=zen_noise)
    rec = {"arch": arch, "metrics": {}, "seconds": {}}
    errors = {}
    state = init.state_dict()
    for name in names:
        net = NB201(arch).to(device)
        net.load_state_dict(state)
        t0 = time.perf_counter()
        try:
            if name == "angle_loss":
                v = M.angle_loss(net, xa, ya, mean, std, aug=aug, iters=iters)
            elif name == "zen":
                b = xf[:zen_b].to(device)
                v = M.zen(net, b, yf[:zen_b].to(device), noise=zen_noise)
            elif name == "linear_regions":
                # TE-NAS's thin network on 3000 crops; drawn here from the free batch's images
                # in turn (the runner crops 3000 distinct images: the same work).
                thin = tenas_lr.ThinSupernet(arch)
                g = torch.Generator().manual_seed(s + 3)
                tenas_lr.kaiming_fan_in_(thin, g)
                n = M.DEFAULT_BATCH[name]
                idx = torch.arange(n) % xf.shape[0]
                draws = tenas_lr.draw_crops(n, tuple(xf.shape[1:]), g)
                v = tenas_lr.linear_regions(thin.to(device),
                                            tenas_lr.crops(xf[idx], draws).to(device))
            else:
                b = M.DEFAULT_BATCH[name]
                v = M.TRAINING_FREE[name](net, xf[:b].to(device), yf[:b].to(device))
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            rec["metrics"][name] = v
        except Exception as e:  # a failing metric is recorded, the run goes on
            errors[name] = f"{type(e).__name__}: {e}"
        rec["seconds"][name] = round(time.perf_counter() - t0, 6)
    if errors:
        rec["error"] = errors
    return rec


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs")
    p.add_argument("--metrics")
    p.add_argument("--data", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shard", default="0/1")
    p.add_argument("--deadline", type=float, default=0.0, help="stop after this many seconds")
    p.add_argument("--limit", type=int, default=0, help="score at most this many archs")
    p.add_argument("--dump-dir")
    p.add_argument("--iters", type=int, default=50, help="angle_loss iterations (smoke tests)")
    p.add_argument("--save-batches", help="write the batches to this .safetensors and exit")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.allow_tf32 = False  # keep float32 arithmetic, as the runner does
    torch.backends.cuda.matmul.allow_tf32 = False
    start = time.monotonic()
    data = load_batches(a.data)
    if a.save_batches:
        save_file({k: v.contiguous() for k, v in data.items()}, a.save_batches)
        return 0
    if not (a.archs and a.metrics):
        p.error("--archs and --metrics are required unless --save-batches is given")
    names = [m.strip() for m in a.metrics.split(",") if m.strip()]
    unknown = [m for m in names
               if m not in ("angle_loss", "linear_regions") and m not in M.TRAINING_FREE]
    if unknown:
        print(f"unknown metrics: {unknown}", file=sys.stderr)
        return 2
    with open(a.archs) as f:
        archs = [ln.strip() for ln in f if ln.strip()]
    i, n = (int(v) for v in a.shard.split("/"))
    archs = archs[i::n]
    done = set()
    if a.out and os.path.exists(a.out):
        with open(a.out) as f:
            for ln in f:
                try:
                    done.add(json.loads(ln)["arch"])
                except (ValueError, KeyError):
                    pass  # a line cut by a killed run; that arch is scored again
    out = open(a.out, "a") if a.out else sys.stdout
    count = 0
    for arch in archs:
        if arch in done:
            continue
        if a.deadline and time.monotonic() - start > a.deadline:
            break
        if a.limit and count >= a.limit:
            break
        rec = score_one(arch, names, data, a.seed, a.device, a.dump_dir, a.iters)
        out.write(json.dumps(rec) + "\n")
        out.flush()
        count += 1
    print(f"scored {count} architectures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The PyTorch reference trainer of the accuracy comparison (issue 22): one NB201 network trained
on CIFAR-10 the way a torchvision training script does it, to set beside the runner's
`evaluate` stage on the same network, recipe and epochs.

    bench/.venv/bin/python bench/reference/train_cifar.py --data ../shared/data/cifar10 \
        --arch ARCH --channels 16 --cells 1 --epochs 15 --seed 0 --out ref-seed0.json

Its own data path, independent of the runner's: Pillow decodes every JPEG of `train.tar.gz` and
`test.tar.gz` into memory; each epoch is a fresh random permutation (full shuffle, last partial
batch dropped); training images get torchvision's `RandomCrop(32, padding=4)` (zero padding of
the 8-bit image) and `RandomHorizontalFlip()`, then `ToTensor` and `Normalize` with the CIFAR-10
statistics. The recipe is the runner's `nb201` preset with its overrides: SGD (momentum 0.9,
Nesterov, weight decay on every parameter), cosine annealing to 0 stepped once per optimiser step
(`CosineAnnealingLR(T_max = steps)`, as `train_parity.py` pins the runner's schedule to). The
initialisation is the runner's (tch's default): conv and linear weights uniform in
+-sqrt(6 / fan_in), linear bias uniform in +-1/sqrt(fan_in), BN weight 1 and bias 0, so both sides
start from the same distribution (PyTorch's own default is a narrower +-1/sqrt(fan_in)).

Writes one JSON object: per-epoch mean training loss and rate, test top-1/top-5 and loss after the
last epoch, wall time and training images per second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar import CIFAR10_MEAN, CIFAR10_STD, decode, read_members  # noqa: E402
from nb201 import NB201  # noqa: E402


def load_split(path: str):
    """uint8 [N,3,32,32] and int64 labels, classes in sorted order (as the runner numbers them)."""
    members = read_members(path)
    imgs, labels = [], []
    for ci, items in enumerate(members.values()):
        for _, data in items:
            imgs.append(decode(data))
            labels.append(ci)
    return torch.from_numpy(np.stack(imgs)), torch.tensor(labels, dtype=torch.int64)


def load_staged(folder: str):
    """The same from a split `nas-runner stage-data` wrote (index.json and its shards: records of
    label u32, height u16, width u16, then HWC pixels): the runner's decoded pixels, to tell a
    decoder difference from a training one."""
    with open(os.path.join(folder, "index.json")) as f:
        index = json.load(f)
    imgs, labels = [], []
    for shard in index["shards"]:
        with open(os.path.join(folder, shard["name"]), "rb") as f:
            data = f.read()
        at = 0
        while at < len(data):
            label, h, w = struct.unpack_from("<IHH", data, at)
            at += 8
            n = h * w * index["channels"]
            imgs.append(np.frombuffer(data, np.uint8, n, at).reshape(h, w, -1).transpose(2, 0, 1))
            labels.append(label)
            at += n
    return torch.from_numpy(np.stack(imgs)), torch.tensor(labels, dtype=torch.int64)


def runner_init_(net: nn.Module, gen: torch.Generator) -> None:
    """tch's defaults, which the runner's networks use: Kaiming-uniform fan-in with ReLU gain."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                bound = math.sqrt(6.0 / fan_in)
                m.weight.uniform_(-bound, bound, generator=gen)
                if m.bias is not None:
                    b = 1.0 / math.sqrt(fan_in)
                    m.bias.uniform_(-b, b, generator=gen)
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()


MEAN = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255.0 - MEAN) / STD


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """RandomCrop(side, padding=pad) and RandomHorizontalFlip() of a uint8 batch, per image."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    tops = torch.randint(0, 2 * pad + 1, (b,), generator=gen).tolist()
    lefts = torch.randint(0, 2 * pad + 1, (b,), generator=gen).tolist()
    flips = (torch.rand(b, generator=gen) < 0.5).tolist()
    out = torch.empty_like(x)
    for i in range(b):
        crop = padded[i, :, tops[i]:tops[i] + h, lefts[i]:lefts[i] + w]
        out[i] = crop.flip(2) if flips[i] else crop
    return out


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256):
    net.eval()
    top1 = top5 = 0
    loss = 0.0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            logits = net(normalise(x[i:i + batch]))
            t = y[i:i + batch]
            loss += F.cross_entropy(logits, t, reduction="sum").item()
            best = logits.topk(5, dim=1).indices
            top1 += (best[:, 0] == t).sum().item()
            top5 += (best == t[:, None]).any(dim=1).sum().item()
    n = len(y)
    return {"top1": top1 / n, "top5": top5 / n, "loss": loss / n, "images": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder with train.tar.gz and test.tar.gz")
    ap.add_argument("--staged", help="train on the pixels the runner staged instead (the "
                    "folder holding train/ and test/ of a search's data/): isolates decoding")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    started = time.time()
    if a.staged:
        x_train, y_train = load_staged(os.path.join(a.staged, "train"))
        x_test, y_test = load_staged(os.path.join(a.staged, "test"))
    else:
        x_train, y_train = load_split(os.path.join(a.data, "train.tar.gz"))
        x_test, y_test = load_split(os.path.join(a.data, "test.tar.gz"))
    load_seconds = time.time() - started

    gen = torch.Generator().manual_seed(a.seed)
    net = NB201(a.arch, 10, c=a.channels, n=a.cells)
    runner_init_(net, gen)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, nesterov=True,
                          weight_decay=a.weight_decay)
    steps_per_epoch = len(y_train) // a.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_per_epoch * a.epochs)
    history = []
    train_seconds = 0.0
    for epoch in range(a.epochs):
        t0 = time.time()
        net.train()
        order = torch.randperm(len(y_train), generator=gen)
        lr = opt.param_groups[0]["lr"]
        total = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * a.batch_size:(s + 1) * a.batch_size]
            x = normalise(augment(x_train[idx], gen))
            loss = F.cross_entropy(net(x), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        seconds = time.time() - t0
        train_seconds += seconds
        history.append({"epoch": epoch + 1, "train_loss": total / steps_per_epoch, "lr": lr,
                        "seconds": seconds})
        print(f"epoch {epoch + 1}/{a.epochs}: loss {total / steps_per_epoch:.4f} "
              f"({seconds:.0f} s)", file=sys.stderr, flush=True)
    test = evaluate(net, x_test, y_test)
    result = {
        "side": "reference", "arch": a.arch, "seed": a.seed, "channels": a.channels,
        "cells": a.cells, "epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr,
        "weight_decay": a.weight_decay, "threads": a.threads, "pixels": "staged" if a.staged
        else "pillow",
        "params": sum(p.numel() for p in net.parameters()),
        "history": history, "test": test,
        "load_seconds": load_seconds, "seconds": time.time() - started,
        "images_per_second": steps_per_epoch * a.batch_size * a.epochs / train_seconds,
        "torch": torch.__version__,
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({"top1": test["top1"], "top5": test["top5"]}))


if __name__ == "__main__":
    main()

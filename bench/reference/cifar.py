"""CIFAR-10 as the shared JPEG tarballs (`./<class>/NNNN.jpg`), read with Pillow.

The reference side's data: a class-balanced sample for the metrics, and the decode baseline of the
stage-data benchmark.
"""

from __future__ import annotations

import io
import random
import tarfile
from typing import Dict, List, Tuple

import numpy as np
import torch
from PIL import Image

# CIFAR-10 channel statistics on [0, 1] images (the usual published values).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def read_members(tar_path: str) -> Dict[str, List[Tuple[str, bytes]]]:
    """class name -> [(member name, JPEG bytes)] sorted by name."""
    by_class: Dict[str, List[Tuple[str, bytes]]] = {}
    with tarfile.open(tar_path, "r:*") as tar:
        for m in tar:
            if not m.isfile() or not m.name.lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            parts = m.name.lstrip("./").split("/")
            if len(parts) != 2:
                continue
            f = tar.extractfile(m)
            if f is None:
                continue
            by_class.setdefault(parts[0], []).append((m.name, f.read()))
    if not by_class:
        raise ValueError(f"{tar_path}: no <class>/<image> members found")
    for v in by_class.values():
        v.sort()
    return dict(sorted(by_class.items()))


def decode(data: bytes) -> np.ndarray:
    """JPEG bytes -> uint8 [C,H,W] RGB."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1).copy()


def balanced_sample(tar_path: str, per_class: int, seed: int):
    """`per_class` images of each class (classes in sorted order), drawn with Python's
    random.Random(seed); returns uint8 [N,3,H,W], int64 labels, class names."""
    members = read_members(tar_path)
    rng = random.Random(seed)
    imgs, labels = [], []
    classes = list(members)
    for ci, cls in enumerate(classes):
        items = members[cls]
        if len(items) < per_class:
            raise ValueError(f"{tar_path}: class {cls!r} has {len(items)} < {per_class} images")
        for _, data in rng.sample(items, per_class):
            imgs.append(decode(data))
            labels.append(ci)
    return (torch.from_numpy(np.stack(imgs)), torch.tensor(labels, dtype=torch.int64), classes)

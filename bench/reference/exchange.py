"""The safetensors exchange format between the Rust runner and this reference (bench/README.md).

One file holds one architecture's initial weights and the inputs of its metrics:
- every parameter of the network under its dotted path (``stem.conv.weight``, ...), float32;
  BN buffers ``*.running_mean`` / ``*.running_var`` optional (fresh ones are 0 / 1);
- ``input.images`` uint8 [N,3,H,W], ``input.labels`` int64 [N],
  ``input.mean`` / ``input.std`` float64 [3] (on [0, 1] images);
- optional ``aug.flip`` uint8, ``aug.dx`` / ``aug.dy`` int64, each [iters, N]: angle_loss's
  per-iteration flips and crop offsets into the zero-padded image (0..2*pad);
- optional ``zen.z1`` / ``zen.z2`` float32 [B,3,H,W]: Zen-NAS's Gaussian inputs;
- optional ``crops.draws`` int64 [N,3]: linear_regions' crop per image (channel, row, column);
  its file holds the weights of TE-NAS's thin network (``cells.0.*``, ``head.bn.*``,
  ``classifier.*``, no stem), which `tenas_lr.ThinSupernet.load_exchange` reads;
- metadata ``arch`` (the NB201 string) and ``num_classes``; optional ``metric`` when the file
  holds the inputs of that one metric (the runner writes one file per architecture and metric,
  since each metric initialises its own network).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from nb201 import NB201

_BUFFERS = ("running_mean", "running_var")


@dataclass
class Dump:
    arch: str
    num_classes: int
    weights: Dict[str, torch.Tensor]
    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    aug: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None
    zen_noise: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
    crops: Optional[torch.Tensor] = None
    # Set when the file holds one metric's inputs (the runner's `score --dump-dir`).
    metric: Optional[str] = None

    def build(self) -> NB201:
        """A fresh network with exactly these weights (missing BN buffers stay fresh)."""
        net = NB201(self.arch, self.num_classes)
        state = net.state_dict()
        expected = {k for k in state if not k.endswith("num_batches_tracked")}
        required = {k for k in expected if not k.endswith(_BUFFERS)}
        missing = sorted(required - set(self.weights))
        extra = sorted(set(self.weights) - expected)
        if missing or extra:
            raise ValueError(f"weights do not match arch {self.arch!r}: missing {missing[:5]} "
                             f"({len(missing)}), unexpected {extra[:5]} ({len(extra)})")
        for k, v in self.weights.items():
            if tuple(v.shape) != tuple(state[k].shape):
                raise ValueError(f"{k}: shape {tuple(v.shape)}, expected {tuple(state[k].shape)}")
        net.load_state_dict(self.weights, strict=False)
        return net


def save(path: str, net: NB201, images: torch.Tensor, labels: torch.Tensor, mean, std,
         aug=None, zen_noise=None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    tensors["input.images"] = images.to(torch.uint8).contiguous()
    tensors["input.labels"] = labels.to(torch.int64).contiguous()
    tensors["input.mean"] = torch.as_tensor(mean, dtype=torch.float64)
    tensors["input.std"] = torch.as_tensor(std, dtype=torch.float64)
    if aug is not None:
        flip, dx, dy = aug
        tensors["aug.flip"] = flip.to(torch.uint8).contiguous()
        tensors["aug.dx"] = dx.to(torch.int64).contiguous()
        tensors["aug.dy"] = dy.to(torch.int64).contiguous()
    if zen_noise is not None:
        tensors["zen.z1"] = zen_noise[0].float().contiguous()
        tensors["zen.z2"] = zen_noise[1].float().contiguous()
    save_file(tensors, path, metadata={"arch": net.arch, "num_classes": str(net.num_classes)})


def load(path: str) -> Dump:
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "arch" not in meta:
        raise ValueError(f"{path}: metadata has no 'arch'")
    t = load_file(path)
    for k in ("input.images", "input.labels", "input.mean", "input.std"):
        if k not in t:
            raise ValueError(f"{path}: tensor {k!r} missing")
    aug = None
    if "aug.flip" in t:
        aug = (t.pop("aug.flip"), t.pop("aug.dx"), t.pop("aug.dy"))
    zen_noise = None
    if "zen.z1" in t:
        zen_noise = (t.pop("zen.z1"), t.pop("zen.z2"))
    crops = t.pop("crops.draws", None)
    return Dump(arch=meta["arch"], num_classes=int(meta.get("num_classes", "10")),
                images=t.pop("input.images"), labels=t.pop("input.labels"),
                mean=t.pop("input.mean"), std=t.pop("input.std"), aug=aug,
                zen_noise=zen_noise, crops=crops, weights=t, metric=meta.get("metric"))

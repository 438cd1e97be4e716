"""TE-NAS's linear-region count on its thin NB201 network, written the way TE-NAS computes it.

Definition (Chen et al., TE-NAS, ICLR 2021; `prune_tenas.py` with
`Linear_Region_Collector(input_size=(1000, 1, 3, 3), sample_batch=3)`):
- the network is the *search* network with C=1, N=1, depth 1 and no stem: one cell whose every
  edge holds every candidate op (none, skip, ReLU-conv1x1-BN, ReLU-conv3x3-BN, avg-pool 3x3),
  mixed with softmax weights; for one architecture those are one-hot (the others -inf), so each
  edge outputs its chosen op while every candidate still runs; then BN-ReLU, global pooling and
  a linear classifier;
- a forward hook on every ReLU with a 4-D input records its output; the code of an input is the
  sign of all of them, concatenated;
- inputs: 3 batches of 1000 one-channel 3x3 crops of normalised training images (each batch a
  training-mode forward pass of its own); the count over all 3000 is
  sum_i 1 / #{j : code_j == code_i}, from Hamming distances A (1 - A)^T + (1 - A) A^T.

This file mirrors that structure literally (a one-hot supernet, hooks on every ReLU) rather than
the runner's shortcut (the runner records each cell node that feeds an edge once), so the parity
check tests the shortcut too.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from nb201 import parse_arch

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (to, from) per edge, in the arch string's order.
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


class ReLUConvBN(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(1, 1, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x):
        return self.bn(self.conv(self.relu(x)))


class ThinSupernet(nn.Module):
    def __init__(self, arch: str, num_classes: int = 10):
        super().__init__()
        self.chosen = parse_arch(arch)
        self.edges = nn.ModuleList(nn.ModuleDict({"nor_conv_1x1": ReLUConvBN(1),
                                                  "nor_conv_3x3": ReLUConvBN(3)})
                                   for _ in EDGES)
        self.head_bn = nn.BatchNorm2d(1)
        self.head_relu = nn.ReLU(inplace=False)
        self.classifier = nn.Linear(1, num_classes)

    def _candidate(self, e: int, op: str, x):
        if op == "none":
            return x.mul(0.0)
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return self.edges[e][op](x)

    def forward(self, x):
        nodes: List[Optional[torch.Tensor]] = [x, None, None, None]
        for e, (to, src) in enumerate(EDGES):
            mixed = sum((1.0 if op == self.chosen[e] else 0.0) * self._candidate(e, op, nodes[src])
                        for op in OPS)
            nodes[to] = mixed if nodes[to] is None else nodes[to] + mixed
        h = self.head_relu(self.head_bn(nodes[3]))
        return self.classifier(h.mean(dim=(2, 3)))

    def load_exchange(self, weights: Dict[str, torch.Tensor]) -> None:
        """The runner's thin-network weights (exchange names `cells.0.edges.E.conv|bn.*`,
        `head.bn.*`, `classifier.*`) into the chosen candidates; the others keep theirs (their
        outputs are weighted 0)."""
        state = self.state_dict()
        used = set()
        for name, v in weights.items():
            parts = name.split(".")
            if parts[:3] == ["cells", "0", "edges"]:
                e = int(parts[3])
                target = f"edges.{e}.{self.chosen[e]}." + ".".join(parts[4:])
            elif parts[:2] == ["head", "bn"]:
                target = "head_bn." + ".".join(parts[2:])
            else:
                target = name
            if target not in state or tuple(state[target].shape) != tuple(v.shape):
                raise ValueError(f"thin-network weight {name!r} has no place in the supernet")
            state[target] = v
            used.add(target)
        self.load_state_dict(state)


def kaiming_fan_in_(net: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, (2.0 / m.weight[0].numel()) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.zero_()


def crops(images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """One 3x3 crop per image at draws[i] = (channel, row, column): [N, 1, 3, 3]."""
    return torch.stack([images[i, c:c + 1, r:r + 3, k:k + 3]
                        for i, (c, r, k) in enumerate(draws.tolist())])


def draw_crops(n: int, shape, gen: torch.Generator) -> torch.Tensor:
    c, h, w = shape
    return torch.stack([torch.randint(0, c, (n,), generator=gen),
                        torch.randint(0, h - 2, (n,), generator=gen),
                        torch.randint(0, w - 2, (n,), generator=gen)], 1)


def linear_regions(net: ThinSupernet, x: torch.Tensor, batches: int = 3) -> float:
    outputs: List[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, inp, out: outputs.append(out.detach()))
             for m in net.modules() if isinstance(m, nn.ReLU)]
    net.train()
    codes = []
    try:
        with torch.no_grad():
            for part in x.chunk(batches, 0):
                outputs.clear()
                net(part)
                n = part.shape[0]
                codes.append(torch.cat([torch.sign(o).reshape(n, -1) for o in outputs], 1))
    finally:
        for h in hooks:
            h.remove()
    a = torch.cat(codes, 0).double()
    hamming = a @ (1.0 - a).t()
    hamming = hamming + hamming.t()
    same = (hamming == 0).double().sum(1)
    return float((1.0 / same).sum())

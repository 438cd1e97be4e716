"""NAS-Bench-201 network, written by us from the benchmark's published definition.

Used only as the PyTorch eager reference for timing and for checking the Rust runner's numbers.

Definition (Dong & Yang, "NAS-Bench-201", ICLR 2020):
- stem: conv3x3 (3 -> C=16, no bias) + BatchNorm;
- 3 stages of 5 cells (C = 16, 32, 64), a ResNet reduction block between stages:
  ReLU-conv3x3 stride 2-BN, ReLU-conv3x3-BN, shortcut avgpool 2x2 stride 2 + conv1x1 (no BN);
- cell: 4 nodes, node j = sum_{i<j} op_ij(node_i); the cell's output is node 3;
- ops: none (zero), skip_connect (identity), nor_conv_1x1 / nor_conv_3x3 (ReLU-conv-BN, affine BN,
  no conv bias), avg_pool_3x3 (stride 1, padding 1, count_include_pad=False);
- head: BN-ReLU, global average pooling, linear classifier.

Parameter count (BN affine included, every op counted even when it cannot reach the output):
    72,656 + 65 K + 243,040 n3 + 28,000 n1
for K classes, n3 conv3x3 edges and n1 conv1x1 edges of the cell.

Parameter names (the safetensors exchange format, see bench/README.md) are the dotted paths of
this module tree: ``stem.conv.weight``, ``cells.7.edges.3.bn.bias``, ``cells.5.conv_a.conv.weight``,
``cells.5.shortcut.conv.weight``, ``head.bn.weight``, ``classifier.weight``, ...
Cells are numbered 0..16 (5 cells, reduction block 5, 5 cells, reduction block 11, 5 cells);
edges 0..5 follow the architecture string: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in architecture-string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def parse_arch(arch: str) -> List[str]:
    """Six op names, in EDGES order, from ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    nodes = arch.strip().split("+")
    if len(nodes) != 3:
        raise ValueError(f"arch {arch!r}: expected 3 '+'-separated nodes, found {len(nodes)}")
    ops: List[str] = []
    for j, node in enumerate(nodes, start=1):
        parts = [p for p in node.strip().strip("|").split("|") if p]
        if len(parts) != j:
            raise ValueError(f"arch {arch!r}: node {j} needs {j} inputs, found {len(parts)}")
        for i, part in enumerate(parts):
            name, _, src = part.partition("~")
            if name not in OPS:
                raise ValueError(f"arch {arch!r}: unknown op {name!r} at node {j} input {i}")
            if src != str(i):
                raise ValueError(f"arch {arch!r}: node {j} input {i} names source {src!r}")
            ops.append(name)
    return ops


def has_learnable_ops(ops: List[str]) -> bool:
    """False when every edge is none or skip_connect (64 NB201 cells): the paper skips those."""
    return any(op in ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3") for op in ops)


def param_count_formula(ops: List[str], num_classes: int = 10) -> int:
    n3 = sum(op == "nor_conv_3x3" for op in ops)
    n1 = sum(op == "nor_conv_1x1" for op in ops)
    return 72_656 + 65 * num_classes + 243_040 * n3 + 28_000 * n1


def live_edges(ops: List[str]) -> List[bool]:
    """Edges that can change node 3: not `none`, into a node that reaches node 3, and fed a
    non-zero input or a conv.

    Skipping the others is exact for the output and for every gradient in BN training mode, also
    over a training run: a node fed only zeros stays zero through ReLU, skip and pooling. A conv
    edge is kept even from a zero node: ReLU-conv of zeros is zero, but its affine BN outputs its
    shift, which is zero only until the first update moves it (the benchmark's network trains
    it). Quantities that read every executed layer (NASWOT's ReLU codes, Zen's BN variances)
    differ, hence `prune` is an option of the forward pass.
    """
    conv = ("nor_conv_1x1", "nor_conv_3x3")
    fwd = [True, False, False, False]  # may be non-zero after training
    for e, (j, i) in enumerate(EDGES):
        if ops[e] in conv or (ops[e] != "none" and fwd[i]):
            fwd[j] = True
    bwd = [False, False, False, True]
    for e in reversed(range(len(EDGES))):
        j, i = EDGES[e]
        if ops[e] != "none" and bwd[j]:
            bwd[i] = True
    return [ops[e] != "none" and bwd[j] and (fwd[i] or ops[e] in conv)
            for e, (j, i) in enumerate(EDGES)]


@dataclass
class Record:
    """What one forward pass records, for the metrics that read inside the network."""

    relu_inputs: Optional[list] = None  # NASWOT: input of every executed ReLU
    layer_outputs: Optional[list] = None  # fisher: output of every executed conv / linear
    bn_batch_vars: Optional[list] = None  # Zen-NAS: biased batch variance of every BN (train)
    features: Optional[torch.Tensor] = field(default=None)  # map before global pooling
    prune: bool = False  # skip edges that cannot reach the output (exact, see live_edges)
    no_bn: bool = False  # synflow: BatchNorm removed


def _relu(x: torch.Tensor, rec: Record) -> torch.Tensor:
    if rec.relu_inputs is not None:
        rec.relu_inputs.append(x)
    return F.relu(x)


def _conv(conv: nn.Conv2d, x: torch.Tensor, rec: Record) -> torch.Tensor:
    y = conv(x)
    if rec.layer_outputs is not None:
        rec.layer_outputs.append(y)
    return y


def _bn(bn: nn.BatchNorm2d, x: torch.Tensor, rec: Record) -> torch.Tensor:
    if rec.no_bn:
        return x
    if rec.bn_batch_vars is not None and bn.training:
        rec.bn_batch_vars.append(x.detach().var(dim=(0, 2, 3), unbiased=False))
    return bn(x)


class ConvBN(nn.Module):
    """conv (no bias) + BN; `relu_first` makes it NB201's ReLU-conv-BN."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, relu_first: bool):
        super().__init__()
        self.relu_first = relu_first
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def run(self, x: torch.Tensor, rec: Record) -> torch.Tensor:
        if self.relu_first:
            x = _relu(x, rec)
        return _bn(self.bn, _conv(self.conv, x, rec), rec)


class Shortcut(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)

    def run(self, x: torch.Tensor, rec: Record) -> torch.Tensor:
        return _conv(self.conv, F.avg_pool2d(x, 2, 2), rec)


class ReductionBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ConvBN(c_in, c_out, 3, 2, relu_first=True)
        self.conv_b = ConvBN(c_out, c_out, 3, 1, relu_first=True)
        self.shortcut = Shortcut(c_in, c_out)

    def run(self, x: torch.Tensor, rec: Record) -> torch.Tensor:
        return self.shortcut.run(x, rec) + self.conv_b.run(self.conv_a.run(x, rec), rec)


class Cell(nn.Module):
    def __init__(self, ops: List[str], c: int):
        super().__init__()
        self.ops = list(ops)
        self.live = live_edges(self.ops)
        mods = []
        for op in self.ops:
            if op == "nor_conv_1x1":
                mods.append(ConvBN(c, c, 1, 1, relu_first=True))
            elif op == "nor_conv_3x3":
                mods.append(ConvBN(c, c, 3, 1, relu_first=True))
            else:
                mods.append(nn.Identity())  # parameter-free op, placeholder keeps indices
        self.edges = nn.ModuleList(mods)

    def _op(self, e: int, x: torch.Tensor, rec: Record) -> torch.Tensor:
        op = self.ops[e]
        if op == "none":
            return x.mul(0.0)
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return self.edges[e].run(x, rec)

    def run(self, x: torch.Tensor, rec: Record) -> torch.Tensor:
        nodes: List[Optional[torch.Tensor]] = [x, None, None, None]
        for e, (j, i) in enumerate(EDGES):
            if rec.prune and not self.live[e]:
                continue
            src = nodes[i]
            if src is None:  # only when pruning: a node fed by nothing live is zero
                src = torch.zeros_like(x)
            y = self._op(e, src, rec)
            nodes[j] = y if nodes[j] is None else nodes[j] + y
        out = nodes[3]
        return out if out is not None else torch.zeros_like(x)


class NB201(nn.Module):
    def __init__(self, arch: str, num_classes: int = 10, c: int = 16, n: int = 5):
        super().__init__()
        self.arch = arch
        self.ops = parse_arch(arch)
        self.num_classes = num_classes
        self.stem = ConvBN(3, c, 3, 1, relu_first=False)
        cells = []
        c_prev = c
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                cells.append(ReductionBlock(c_prev, width))
            cells.extend(Cell(self.ops, width) for _ in range(n))
            c_prev = width
        self.cells = nn.ModuleList(cells)
        self.head = nn.Module()
        self.head.bn = nn.BatchNorm2d(c_prev)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor, rec: Optional[Record] = None) -> torch.Tensor:
        rec = rec if rec is not None else Record()
        x = self.stem.run(x, rec)
        for cell in self.cells:
            x = cell.run(x, rec)
        x = _relu(_bn(self.head.bn, x, rec), rec)
        rec.features = x
        y = self.classifier(x.mean(dim=(2, 3)))
        if rec.layer_outputs is not None:
            rec.layer_outputs.append(y)
        return y

    def conv_linear_weights(self) -> List[torch.Tensor]:
        """Weights of every conv and linear layer, in module order (the pruning metrics' set)."""
        return [m.weight for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def kaiming_fan_in_(net: nn.Module, generator: Optional[torch.Generator] = None) -> None:
    """The paper's init: Kaiming-normal fan-in (gain sqrt 2) on conv and linear weights, zero
    biases, BN weight 1 and bias 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())

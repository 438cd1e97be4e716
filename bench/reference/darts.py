"""DARTS CIFAR network (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019),
written by us from the paper's definition, for the training-throughput benchmark and the
trainer's step parity (train_parity_darts.py; the runner's `exchange_name` maps its variables to
this module's state-dict names).

C=36, 20 cells (reductions at 1/3 and 2/3), auxiliary head after the second reduction, each cell
sums two ops per intermediate node and concatenates the four intermediate nodes; ops: separable
conv (ReLU-dw-pw-BN twice), dilated conv (ReLU-dw(dil 2)-pw-BN), max/avg pool 3x3, skip
(factorized reduce when strided); drop-path on non-identity ops in training.
"""

from __future__ import annotations

import torch
import torch.nn as nn

DARTS_V2 = {
    "normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
               ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0),
               ("dil_conv_3x3", 2)],
    "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2),
               ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("skip_connect", 2),
               ("skip_connect", 2), ("max_pool_3x3", 1)],
}


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, pad):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, pad, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, pad, dil):
        super().__init__(nn.ReLU(),
                         nn.Conv2d(c_in, c_in, k, stride, pad, dilation=dil, groups=c_in,
                                   bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class SepConv(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride, pad):
        super().__init__(DilConv(c_in, c_in, k, stride, pad, 1), DilConv(c_in, c_out, k, 1, pad, 1))


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def make_op(name, c, stride):
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2)
    raise ValueError(f"unknown DARTS op {name!r}")


# The step parity fixture's hooks: when REPLAYED_MASKS is an iterator, drop-path takes its masks
# from it instead of drawing them; when RECORDED_MASKS is a list, every mask used is appended.
REPLAYED_MASKS = None
RECORDED_MASKS = None


def drop_path(x, p):
    keep = 1.0 - p
    if REPLAYED_MASKS is not None:
        mask = next(REPLAYED_MASKS).view(-1, 1, 1, 1).to(x.dtype)
    else:
        mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device).bernoulli_(keep)
    if RECORDED_MASKS is not None:
        RECORDED_MASKS.append(mask.detach().clone())
    return x / keep * mask


class Cell(nn.Module):
    def __init__(self, genotype, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0)
        ops = genotype["reduce" if reduction else "normal"]
        self.reduction = reduction
        self.idx = [i for _, i in ops]
        self.ops = nn.ModuleList(make_op(n, c, 2 if reduction and i < 2 else 1) for n, i in ops)

    def forward(self, s0, s1, drop_prob):
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(len(self.ops) // 2):
            hs = []
            for j in (2 * k, 2 * k + 1):
                h = self.ops[j](states[self.idx[j]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[j], nn.Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat(states[2:], dim=1)


class AuxHead(nn.Module):
    def __init__(self, c, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class DartsCifar(nn.Module):
    def __init__(self, genotype=DARTS_V2, c=36, num_classes=10, layers=20, auxiliary=True):
        super().__init__()
        c_curr = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        self.aux_pos = 2 * layers // 3
        self.aux = None
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_curr
            if i == self.aux_pos and auxiliary:
                self.aux = AuxHead(c_p, num_classes)
        self.classifier = nn.Linear(c_p, num_classes)
        self.drop_path_prob = 0.2

    def forward(self, x):
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_pos and self.aux is not None and self.training:
                aux = self.aux(s1)
        logits = self.classifier(s1.mean(dim=(2, 3)))
        return logits, aux

    def param_count(self) -> int:
        """Published convention: auxiliary head excluded (DARTS_V2 CIFAR: 3.3M)."""
        aux = sum(p.numel() for p in self.aux.parameters()) if self.aux is not None else 0
        return sum(p.numel() for p in self.parameters()) - aux

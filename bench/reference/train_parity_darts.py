"""Step-for-step reference of the runner's trainer on a DARTS network (issue 22): the DARTS-only
recipe ingredients that train_parity.py (NB201) cannot reach, i.e. the auxiliary head's weighted
loss and drop-path, with the masks PyTorch drew recorded so that the runner replays them.

    bench/.venv/bin/python bench/reference/train_parity_darts.py OUT_DIR

writes OUT_DIR/train_parity_darts.safetensors and OUT_DIR/train_parity_darts.json (the committed
fixture of runner/tests/train_parity.rs). A DARTS_V2 CIFAR network at width 4 with 5 cells
(reductions at cells 1 and 3, the auxiliary head after cell 3) trains 4 epochs of one step on
32x32 inputs, batch 4 (few steps: near-ties of so small a batch amplify rounding), in two cases:
- the DARTS CIFAR recipe's ingredients: heavy-ball momentum, weight decay, cosine decay, the
  auxiliary loss weighted 0.4, drop-path growing per epoch (0, 0.075, 0.15, 0.225: `drop_path *
  epoch / epochs`, as DARTS' train.py sets it), gradient clipping at 5;
- the DARTS ImageNet recipe's: a one-epoch linear warm-up then cosine, label smoothing 0.1 on
  both heads, the auxiliary loss, drop-path, clipping at a norm every step exceeds.
The tensors, beside those of train_parity.py (``init.<name>``, ``batch.x``, ``batch.y``,
``eval.x``, ``<case>.lr``, ``<case>.loss``, ``<case>.final.<name>``, ``<case>.eval_logits``):
``<case>.final_sample.<name>`` (every 16th value, flattened, of a weight tensor of more than
65,536 values: the auxiliary head's 768-channel convolution), ``<case>.rounding.loss`` float64 [steps], ``<case>.rounding.final.<name>`` and
``<case>.rounding.eval_logits`` float64 [1] (how far this float32 run is from the same run in
float64 with the same masks: the largest difference per step's loss, per tensor, of the logits;
a tiny batch under drop-path has near-ties whose rounding SGD amplifies, and the test allows
for what PyTorch's own rounding does), ``<case>.drop_prob`` float64 [steps] (the probability each step used), ``<case>.mask_count``
int64 [steps] (masks drawn in that step's forward pass) and ``<case>.masks`` float32
[masks, batch] (every mask, in draw order: cell by cell, op by op).
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import darts  # noqa: E402
from train_parity import scheduler  # noqa: E402

ARCH = "DARTS_V2"
WIDTH, CELLS, CLASSES = 4, 5, 10
SIDE, BATCH = 32, 4
STEPS_PER_EPOCH, EPOCHS = 1, 4
LR = 0.025
# The auxiliary head's 128->768 2x2 convolution holds 393,216 of the network's weights; after
# training, every 16th of them is kept (its gradient moves them all), which keeps the committed
# fixture small.
FULL_LIMIT, SAMPLE_STRIDE = 65536, 16

CASES = [
    {"name": "darts_cifar", "momentum": 0.9, "nesterov": False, "weight_decay": 3e-4,
     "schedule": {"kind": "cosine", "min_lr": 0.0}, "warmup_epochs": 0.0,
     "label_smoothing": 0.0, "aux_weight": 0.4, "drop_path": 0.3, "grad_clip": 5.0},
    {"name": "darts_imagenet", "momentum": 0.9, "nesterov": False, "weight_decay": 3e-5,
     "schedule": {"kind": "cosine", "min_lr": 0.0}, "warmup_epochs": 1.0,
     "label_smoothing": 0.1, "aux_weight": 0.4, "drop_path": 0.3, "grad_clip": 0.5},
]


def run_case(init, xs, ys, x_eval, case, dtype=torch.float32, replay=None):
    """Trains `case` in `dtype`; drop-path masks are drawn and recorded, or taken from `replay`
    (the float32 run's, so that the float64 run sees the same draws)."""
    net = darts.DartsCifar(darts.DARTS_V2, c=WIDTH, num_classes=CLASSES, layers=CELLS,
                           auxiliary=True).to(dtype)
    net.load_state_dict({k: v.to(dtype) for k, v in init.items()})
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=case["momentum"],
                          nesterov=case["nesterov"], weight_decay=case["weight_decay"])
    sched = scheduler(opt, case, STEPS_PER_EPOCH, EPOCHS)
    rec = {"lr": [], "loss": [], "drop_prob": [], "mask_count": [], "masks": []}
    darts.REPLAYED_MASKS = iter(replay) if replay is not None else None
    net.train()
    for s, (x, y) in enumerate(zip(xs, ys)):
        epoch = s // STEPS_PER_EPOCH
        net.drop_path_prob = case["drop_path"] * epoch / EPOCHS
        darts.RECORDED_MASKS = []
        rec["lr"].append(opt.param_groups[0]["lr"])
        logits, aux = net(x.to(dtype))
        if aux is None:
            raise SystemExit("the auxiliary head gave no logits in training mode")
        ls = case["label_smoothing"]
        loss = (F.cross_entropy(logits, y, label_smoothing=ls)
                + case["aux_weight"] * F.cross_entropy(aux, y, label_smoothing=ls))
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), case["grad_clip"])
        if case["name"] == "darts_imagenet" and norm <= case["grad_clip"]:
            raise SystemExit(f"{case['name']}: gradient norm {norm:.3f} left unclipped")
        opt.step()
        sched.step()
        rec["loss"].append(loss.item())
        rec["drop_prob"].append(net.drop_path_prob)
        rec["mask_count"].append(len(darts.RECORDED_MASKS))
        rec["masks"].extend(m.view(-1) for m in darts.RECORDED_MASKS)
    darts.RECORDED_MASKS = darts.REPLAYED_MASKS = None
    net.eval()
    with torch.no_grad():
        logits, _ = net(x_eval.to(dtype))
    final = {k: v.detach().clone() for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    return rec, final, logits


def rounding(rec, final, logits, rec64, final64, logits64):
    """How far float32 PyTorch is from float64 PyTorch on the same draws: per-step loss
    differences and, per tensor, the largest weight difference (the test's rounding yardstick)."""
    out = {"rounding.loss": (torch.tensor(rec["loss"], dtype=torch.float64)
                             - torch.tensor(rec64["loss"], dtype=torch.float64)).abs(),
           "rounding.eval_logits": (logits.double() - logits64).abs().max().view(1)}
    for k, v in final.items():
        out[f"rounding.final.{k}"] = (v.double() - final64[k].double()).abs().max().view(1)
    return out


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20261207)
    net = darts.DartsCifar(darts.DARTS_V2, c=WIDTH, num_classes=CLASSES, layers=CELLS,
                           auxiliary=True)
    init = {k: v.detach().clone() for k, v in net.state_dict().items()
            if not k.endswith("num_batches_tracked")}
    steps = STEPS_PER_EPOCH * EPOCHS
    xs = torch.randn(steps, BATCH, 3, SIDE, SIDE)
    ys = torch.randint(0, CLASSES, (steps, BATCH))
    x_eval = torch.randn(BATCH, 3, SIDE, SIDE)
    tensors = {f"init.{k}": v.contiguous() for k, v in init.items()}
    tensors.update({"batch.x": xs, "batch.y": ys, "eval.x": x_eval})
    for case in CASES:
        rec, final, logits = run_case(init, xs, ys, x_eval, case)
        exact = run_case(init, xs, ys, x_eval, case, torch.float64, rec["masks"])
        name = case["name"]
        tensors.update({f"{name}.{k}": v for k, v in
                        rounding(rec, final, logits, *exact).items()})
        for k in ("lr", "loss", "drop_prob"):
            tensors[f"{name}.{k}"] = torch.tensor(rec[k], dtype=torch.float64)
        tensors[f"{name}.mask_count"] = torch.tensor(rec["mask_count"], dtype=torch.int64)
        tensors[f"{name}.masks"] = torch.stack(rec["masks"]).contiguous()
        tensors[f"{name}.eval_logits"] = logits.contiguous()
        for k, v in final.items():
            if v.numel() > FULL_LIMIT:
                tensors[f"{name}.final_sample.{k}"] = v.flatten()[::SAMPLE_STRIDE].contiguous()
            else:
                tensors[f"{name}.final.{k}"] = v.contiguous()
        dropped = int((1 - tensors[f"{name}.masks"]).sum())
        print(f"{name}: loss {rec['loss'][0]:.4f} -> {rec['loss'][-1]:.4f}, masks per step "
              f"{rec['mask_count']} ({dropped} samples dropped); float32 against float64: "
              f"loss {float(tensors[name + '.rounding.loss'].max()):.1e}", file=sys.stderr)
    save_file(tensors, os.path.join(out, "train_parity_darts.safetensors"))
    meta = {"space": "darts", "arch": ARCH, "width": WIDTH, "cells": CELLS, "classes": CLASSES,
            "side": SIDE, "steps_per_epoch": STEPS_PER_EPOCH, "epochs": EPOCHS, "lr": LR,
            "sample_stride": SAMPLE_STRIDE, "torch": torch.__version__, "cases": CASES}
    with open(os.path.join(out, "train_parity_darts.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

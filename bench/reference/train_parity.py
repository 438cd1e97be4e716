"""Step-for-step reference of the runner's trainer (issue 22): PyTorch's own SGD, LR schedulers,
label-smoothed cross-entropy and gradient clipping train a small NB201 network for a few steps
from the weights and batches in the fixture, and the fixture records what they gave.

    bench/.venv/bin/python bench/reference/train_parity.py OUT_DIR

writes OUT_DIR/train_parity.safetensors and OUT_DIR/train_parity.json (the committed fixture of
runner/tests/train_parity.rs, which runs the runner's `trainer::step`, `Sgd` and `LrSchedule` on
the same inputs and compares step by step). The tensors:
- ``init.<name>``: the network's initial parameters and BN buffers (exchange names, float32);
- ``batch.x`` float32 [steps, batch, 3, side, side], ``batch.y`` int64 [steps, batch];
  ``eval.x`` float32 [batch, 3, side, side]: a batch the trained network classifies in eval mode;
- per case ``<case>.lr`` and ``<case>.loss`` float64 [steps] (the rate each step used and the
  loss before its update), ``<case>.final.<name>`` (weights and BN buffers after the last step)
  and ``<case>.eval_logits`` float32 [batch, classes].
The JSON holds the architecture, network size, steps per epoch and each case's recipe fields
under the runner's `Recipe` names.

Each case exercises recipe ingredients: plain SGD at a constant rate; Nesterov momentum with
weight decay under a linear warm-up then cosine decay; heavy-ball momentum under a step decay
that crosses epoch boundaries; label smoothing with gradient clipping at a norm every step
exceeds. BN runs in training mode for the steps and in eval mode (running statistics) for the
final logits. The DARTS-only ingredients (auxiliary head, drop-path) are in
train_parity_darts.py.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nb201 import NB201  # noqa: E402

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
WIDTH, CELLS, CLASSES = 4, 1, 10
SIDE, BATCH = 8, 8
STEPS_PER_EPOCH, EPOCHS = 3, 3
LR = 0.1

CASES = [
    {"name": "sgd_constant", "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
     "schedule": {"kind": "constant"}, "warmup_epochs": 0.0, "label_smoothing": 0.0,
     "grad_clip": None},
    {"name": "nesterov_wd_warmup_cosine", "momentum": 0.9, "nesterov": True,
     "weight_decay": 5e-4, "schedule": {"kind": "cosine", "min_lr": 0.001},
     "warmup_epochs": 1.0, "label_smoothing": 0.0, "grad_clip": None},
    {"name": "momentum_step_decay", "momentum": 0.9, "nesterov": False, "weight_decay": 3e-4,
     "schedule": {"kind": "step", "every_epochs": 1.0, "gamma": 0.5}, "warmup_epochs": 0.0,
     "label_smoothing": 0.0, "grad_clip": None},
    {"name": "smoothing_clipping", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
     "schedule": {"kind": "cosine", "min_lr": 0.0}, "warmup_epochs": 0.0,
     "label_smoothing": 0.1, "grad_clip": 0.05},
]


def scheduler(opt: torch.optim.Optimizer, case: dict, steps_per_epoch: int = STEPS_PER_EPOCH,
              epochs: int = EPOCHS):
    """The case's schedule from torch.optim.lr_scheduler, stepped once per optimiser step."""
    total = steps_per_epoch * epochs
    warm = round(case["warmup_epochs"] * steps_per_epoch)
    s = case["schedule"]
    if s["kind"] == "constant":
        main = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    elif s["kind"] == "step":
        main = torch.optim.lr_scheduler.StepLR(
            opt, step_size=round(s["every_epochs"] * steps_per_epoch), gamma=s["gamma"])
    else:
        # The runner's cosine reaches min_lr at step `total`, one past the last step.
        main = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=total - warm, eta_min=s["min_lr"])
    if warm == 0:
        return main
    # lr * (step + 1) / warm for the first `warm` steps.
    warmup = torch.optim.lr_scheduler.LinearLR(
        opt, start_factor=1.0 / warm, end_factor=1.0, total_iters=warm - 1)
    return torch.optim.lr_scheduler.SequentialLR(opt, [warmup, main], milestones=[warm])


def run_case(init: dict, xs: torch.Tensor, ys: torch.Tensor, x_eval: torch.Tensor, case: dict):
    net = NB201(ARCH, CLASSES, c=WIDTH, n=CELLS)
    net.load_state_dict(init, strict=False)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=case["momentum"],
                          nesterov=case["nesterov"], weight_decay=case["weight_decay"])
    sched = scheduler(opt, case)
    lrs, losses = [], []
    net.train()
    for x, y in zip(xs, ys):
        lrs.append(opt.param_groups[0]["lr"])
        loss = F.cross_entropy(net(x), y, label_smoothing=case["label_smoothing"])
        opt.zero_grad()
        loss.backward()
        if case["grad_clip"] is not None:
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), case["grad_clip"])
            if norm <= case["grad_clip"]:
                raise SystemExit(f"{case['name']}: gradient norm {norm:.3f} left unclipped")
        opt.step()
        sched.step()
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        logits = net(x_eval)
    final = {k: v.detach().clone() for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    return lrs, losses, final, logits


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20261206)
    net = NB201(ARCH, CLASSES, c=WIDTH, n=CELLS)
    init = {k: v.detach().clone() for k, v in net.state_dict().items()
            if not k.endswith("num_batches_tracked")}
    steps = STEPS_PER_EPOCH * EPOCHS
    xs = torch.randn(steps, BATCH, 3, SIDE, SIDE)
    ys = torch.randint(0, CLASSES, (steps, BATCH))
    x_eval = torch.randn(BATCH, 3, SIDE, SIDE)
    tensors = {f"init.{k}": v.contiguous() for k, v in init.items()}
    tensors.update({"batch.x": xs, "batch.y": ys, "eval.x": x_eval})
    for case in CASES:
        lrs, losses, final, logits = run_case(init, xs, ys, x_eval, case)
        name = case["name"]
        tensors[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
        tensors[f"{name}.loss"] = torch.tensor(losses, dtype=torch.float64)
        tensors[f"{name}.eval_logits"] = logits.contiguous()
        tensors.update({f"{name}.final.{k}": v.contiguous() for k, v in final.items()})
        print(f"{name}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, lr {lrs}", file=sys.stderr)
    save_file(tensors, os.path.join(out, "train_parity.safetensors"))
    meta = {"arch": ARCH, "width": WIDTH, "cells": CELLS, "classes": CLASSES, "side": SIDE,
            "steps_per_epoch": STEPS_PER_EPOCH, "epochs": EPOCHS, "lr": LR,
            "torch": torch.__version__, "cases": CASES}
    with open(os.path.join(out, "train_parity.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

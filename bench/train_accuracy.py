"""Formats the accuracy comparison of bench/train-accuracy.sh: a table per seed and side, the
means and their gap against the goal (runner's mean test top-1 within 1 point of the
reference's), wall times, and the learning curves (training loss per epoch) of every run in one
plot. Writes the Markdown that report.py puts into BENCHMARKS.md as section 10.

    bench/.venv/bin/python bench/train_accuracy.py --out-dir bench/out/train-accuracy \
        --arch ARCH --seeds 0 1 --markdown bench/train-accuracy.md \
        --plot bench/plots/train-accuracy.svg
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import charts  # noqa: E402
from report import time_v_wall  # noqa: E402

GOAL_POINTS = 1.0


def wall_seconds(time_file: str) -> float:
    """Elapsed wall clock from a `/usr/bin/time -v` file."""
    secs = time_v_wall(open(time_file).read())
    if secs is None:
        raise ValueError(f"{time_file}: no wall clock time")
    return secs


def ours(out_dir: str, seed: int, arch: str) -> dict:
    run = os.path.join(out_dir, f"ours-seed{seed}")
    r = json.load(open(os.path.join(run, "eval", "report.json")))
    if r["arch"] != arch:
        raise SystemExit(f"{run}: the runner trained {r['arch']}, not {arch}")
    summary = json.load(open(os.path.join(run, "summary.json")))
    return {
        "top1": 1.0 - r["top1_err"], "top5": 1.0 - r["top5_err"], "params": r["params"],
        "losses": [h["train_loss"] for h in r["history"]],
        "train_seconds": r["seconds"],
        "wall": wall_seconds(os.path.join(out_dir, f"ours-seed{seed}.time")),
        "stages": summary.get("stage_seconds", {}),
    }


def reference(out_dir: str, seed: int, arch: str) -> dict:
    r = json.load(open(os.path.join(out_dir, f"ref-seed{seed}.json")))
    if r["arch"] != arch:
        raise SystemExit(f"ref-seed{seed}.json: trained {r['arch']}, not {arch}")
    return {
        "top1": r["test"]["top1"], "top5": r["test"]["top5"], "params": r["params"],
        "losses": [h["train_loss"] for h in r["history"]],
        "train_seconds": r["seconds"] - r["load_seconds"],
        "wall": wall_seconds(os.path.join(out_dir, f"ref-seed{seed}.time")),
        "epochs": r["epochs"], "channels": r["channels"], "cells": r["cells"],
    }


def staged(out_dir: str, seed: int):
    """The reference trainer's run on the runner's staged pixels, when DIAGNOSE made one."""
    path = os.path.join(out_dir, f"refstaged-seed{seed}.json")
    if not os.path.exists(path):
        return None
    r = json.load(open(path))
    return {
        "top1": r["test"]["top1"], "top5": r["test"]["top5"],
        "losses": [h["train_loss"] for h in r["history"]],
        "train_seconds": r["seconds"] - r["load_seconds"],
        "wall": wall_seconds(os.path.join(out_dir, f"refstaged-seed{seed}.time")),
    }


def decode_difference(data: str, staged_test: str) -> str:
    """How the runner's decoded test images (jpeg-decoder) differ from Pillow's (libjpeg-turbo)."""
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
    from train_cifar import load_split, load_staged

    ours, ours_y = load_staged(staged_test)
    pil, pil_y = load_split(os.path.join(data, "test.tar.gz"))
    if not bool((ours_y == pil_y).all()):
        return "(the staged test split is not in the tarball's order: no pixel comparison)"
    diff = (ours.numpy().astype(np.int16) - pil.numpy().astype(np.int16))
    diff = np.abs(diff).reshape(len(diff), -1)
    p50, p90, p99, top = np.percentile(diff.max(axis=1), [50, 90, 99, 100])
    return (f"mean absolute difference {diff.mean():.2f} of 255; per image, the largest "
            f"difference has median {p50:.0f}, 90th percentile {p90:.0f}, 99th {p99:.0f}, "
            f"maximum {top:.0f}")


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--arch", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--data", help="the CIFAR-10 folder, for the decoder comparison")
    ap.add_argument("--note", default="", help="a sentence on the conditions of the runs")
    a = ap.parse_args()
    runs = [(s, ours(a.out_dir, s, a.arch), reference(a.out_dir, s, a.arch)) for s in a.seeds]
    first = runs[0][2]
    if any(o["params"] != r["params"] for _, o, r in runs):
        raise SystemExit("the two sides trained networks of different parameter counts")

    # Colour: the side; line style: the seed.
    styles = ["-", "--", "-.", ":"]
    series = []
    diag = {seed: staged(a.out_dir, seed) for seed, _, _ in runs}
    for k, (seed, o, r) in enumerate(runs):
        sides = [("runner", o), ("reference", r), ("reference on the runner's pixels", diag[seed])]
        for colour, (side, x) in enumerate(sides):
            if x:
                series.append((f"{side}, seed {seed}", range(1, len(x["losses"]) + 1),
                               x["losses"], colour, styles[k % len(styles)]))

    mean_o = statistics.mean(o["top1"] for _, o, _ in runs)
    mean_r = statistics.mean(r["top1"] for _, _, r in runs)
    gap = 100 * (mean_o - mean_r)
    rows = ["| seed | side | test top-1 | test top-5 | last epoch's training loss | training s "
            "| wall s |", "|---|---|---|---|---|---|---|"]
    for seed, o, r in runs:
        sides = [("runner", o), ("reference", r)]
        if diag[seed]:
            sides.append(("reference on the runner's pixels", diag[seed]))
        for side, x in sides:
            rows.append(f"| {seed} | {side} | {pct(x['top1'])} | {pct(x['top5'])} | "
                        f"{x['losses'][-1]:.4f} | {x['train_seconds']:.0f} | {x['wall']:.0f} |")
    os.makedirs(os.path.dirname(a.plot) or ".", exist_ok=True)
    charts.lines(a.plot, "Training loss per epoch, CIFAR-10", series, "epoch",
                 "mean training loss")
    verdict = "met" if abs(gap) <= GOAL_POINTS else "NOT met"
    plot_rel = os.path.relpath(a.plot, os.path.dirname(os.path.abspath(a.markdown)) + "/..")
    lines = [
        f"The NB201 cell `{a.arch}` at width {first['channels']}, {first['cells']} cell per "
        f"stage ({first['params']:,} parameters), trained {first['epochs']} epochs on the "
        "50,000 CIFAR-10 training images of `../shared/data/cifar10` with the `nb201` preset "
        "(SGD, Nesterov momentum 0.9, weight decay 5e-4, batch 256, rate 0.1 with per-step "
        "cosine decay to 0, pad-4 random crop and flip) and tested on the 10,000 test images, "
        "by the runner (`nas-runner local`: stage-data, its shard loader and augmentation, the "
        "evaluate stage's final training) and by the PyTorch reference trainer "
        "(`bench/reference/train_cifar.py`: Pillow decoding, a full shuffle each epoch, "
        "torchvision's RandomCrop/RandomHorizontalFlip). Both start from the same "
        "initialisation rule (tch's Kaiming-uniform); the weights, batches and random draws "
        "differ (each side its own generator), so the seeds give each side's spread. Why "
        "this size: one cell per stage at width 16 trains at a few hundred images per second "
        "on one core, so the issue's four runs (two seeds a side) fit the two hours it allows, and 10 epochs of "
        "cosine decay take this cell to about 75%, far enough from chance for a one-point "
        "goal to mean something.",
        "",
        "\n".join(rows),
        "",
        f"Mean test top-1: runner {pct(mean_o)}, reference {pct(mean_r)}; runner minus "
        f"reference {gap:+.2f} points (goal: within {GOAL_POINTS:.0f} point: {verdict}).",
        "",
        f"![training loss per epoch]({plot_rel})",
        "",
    ]
    done = [(seed, x) for seed, x in diag.items() if x]
    if done:
        mean_s = statistics.mean(x["top1"] for _, x in done)
        mean_r_same = statistics.mean(r["top1"] for seed, _, r in runs if diag[seed])
        mean_o_same = statistics.mean(o["top1"] for seed, o, _ in runs if diag[seed])
        lines += [
            "**The same pixels.** The reference trainer run once more on the pixels the "
            "runner staged (`DIAGNOSE=1`: `train_cifar.py --staged`, the staged split's order), "
            f"seeds {', '.join(str(s) for s, _ in done)}: {pct(mean_s)} against "
            f"{pct(mean_r_same)} on Pillow's pixels in the tarball's order and the runner's "
            f"{pct(mean_o_same)} on the same seeds. On the same pixels the runner is "
            f"{100 * (mean_o_same - mean_s):+.2f} points from the reference (goal: within "
            f"{GOAL_POINTS:.0f} point: "
            f"{'met' if abs(mean_o_same - mean_s) * 100 <= GOAL_POINTS else 'NOT met'}); the "
            f"reference itself moves {100 * (mean_s - mean_r_same):+.2f} points between the two "
            "inputs, whose pixels differ as the next paragraph says.",
            "",
        ]
        if a.data:
            seed0 = done[0][0]
            lines += [
                "The two decoders on the 10,000 test images (jpeg-decoder in the runner, "
                "libjpeg-turbo through Pillow; CIFAR-10's JPEGs are 4:2:0 chroma-subsampled): "
                + decode_difference(a.data, os.path.join(a.out_dir, f"ours-seed{seed0}", "data",
                                                         "test")) + ".",
                "",
            ]
    lines += [
        "The runner's runs went one after the other beside the reference's, one thread each, "
        "on the 2-core CPU machine; "
        "wall times include data loading (the runner's: staging, scoring the one candidate, "
        "its one-epoch short training on 90% of the data, which the pipeline requires, and "
        "the report). Reproduce with `bench/train-accuracy.sh` (environment: `EPOCHS`, "
        "`SEEDS`, `CHANNELS`, `CELLS`, `DIAGNOSE`)." + (f" {a.note}" if a.note else ""),
    ]
    with open(a.markdown, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

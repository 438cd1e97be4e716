"""The charts of BENCHMARKS.md, drawn with matplotlib as SVG.

    bars(path, title, labels, series, x_label, marks=())    horizontal grouped bars
    histograms(path, title, series, x_label, bins=30)       overlaid step histograms
    lines(path, title, series, x_label, y_label)            curves, e.g. loss per epoch

`series` is a list of (name, values); a value of None leaves its bar out. Colours come from the
Okabe-Ito colour-blind-safe palette in series order. The SVG is reproducible (no date, fixed
element ids), so re-running the report changes a plot only when its numbers change.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
plt.rcParams.update({
    "svg.hashsalt": "nas-bench",
    "svg.fonttype": "none",  # text stays text: smaller files, searchable labels
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
})


def _save(fig, path: str) -> None:
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)


def bars(path: str, title: str, labels: Sequence[str],
         series: Sequence[Tuple[str, Sequence[Optional[float]]]], x_label: str,
         marks: Sequence[Tuple[float, str]] = ()) -> None:
    """One row per label (first at the top), one bar per series; `marks` draws labelled
    vertical dashed lines."""
    n = max(len(series), 1)
    height = 0.8 / n
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.22 * len(labels) * n + 0.25 * n))
    rows = np.arange(len(labels))
    for k, (name, values) in enumerate(series):
        ys = [r + (k - (n - 1) / 2) * height for r, v in zip(rows, values) if v is not None]
        xs = [v for v in values if v is not None]
        ax.barh(ys, xs, height=height, color=PALETTE[k % len(PALETTE)], label=name)
    for x, name in marks:
        ax.axvline(x, color="#333333", linestyle="--", linewidth=1)
        if name:
            ax.annotate(name, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, 2),
                        textcoords="offset points", fontsize=9)
    ax.set_yticks(rows, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(x_label)
    ax.set_title(title, fontsize=11, fontweight="bold", pad=14 if marks else 6)
    if len(series) > 1:  # below the axes: no bar hides behind it
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=9, frameon=False)
    _save(fig, path)


def histograms(path: str, title: str, series: Sequence[Tuple[str, Sequence[float]]],
               x_label: str, bins: int = 30) -> None:
    """Overlaid step histograms (share of draws per bin) on common bins."""
    allv = [v for _, vs in series for v in vs]
    lo, hi = min(allv), max(allv)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    for k, (name, values) in enumerate(series):
        weights = np.full(len(values), 1.0 / max(len(values), 1))
        # Earlier series drawn wider, so a later one on top of it leaves it visible.
        ax.hist(values, bins=edges, weights=weights, histtype="step",
                linewidth=1.5 + 2.0 * (len(series) - 1 - k), color=PALETTE[k % len(PALETTE)],
                label=name)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(x_label)
    ax.set_ylabel("share of draws")
    ax.set_title(title, fontsize=11, fontweight="bold")
    ax.legend(loc="upper left", fontsize=9)
    _save(fig, path)


def lines(path: str, title: str,
          series: Sequence[Tuple[str, Sequence[float], Sequence[float], int, str]],
          x_label: str, y_label: str) -> None:
    """One line per series `(name, xs, ys, colour index, line style)`: runs that belong together
    share a colour, the sides a style."""
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    for name, xs, ys, colour, style in series:
        ax.plot(xs, ys, linestyle=style, linewidth=1.6, marker="o", markersize=2.5,
                color=PALETTE[colour % len(PALETTE)], label=name)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=11, fontweight="bold")
    ax.legend(loc="upper right", fontsize=9)
    _save(fig, path)

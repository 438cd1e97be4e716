"""Small SVG charts for BENCHMARKS.md, with no plotting library (the bench venv has none).

    bars(path, title, labels, series, x_label, marks=())    horizontal grouped bars
    histograms(path, title, series, x_label, bins=30)       overlaid step histograms

`series` is a list of (name, values); a value of None leaves its bar out. Colours come from a
fixed, colour-blind-safe palette in series order.
"""

from __future__ import annotations

import html
import math
from typing import List, Optional, Sequence, Tuple

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
FONT = 'font-family="sans-serif" font-size="12"'


def _esc(s: str) -> str:
    return html.escape(str(s), quote=True)


def _ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    """Round tick values covering [lo, hi]."""
    span = hi - lo if hi > lo else 1.0
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 2.5, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int(math.ceil((hi - start) / step)) + 1)]


def _legend(names: Sequence[str], x: float, y: float) -> List[str]:
    out = []
    for i, name in enumerate(names):
        yy = y + 16 * i
        out.append(f'<rect x="{x}" y="{yy - 9}" width="10" height="10" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{yy}" {FONT}>{_esc(name)}</text>')
    return out


def _frame(width: int, height: int, title: str, body: List[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-family="sans-serif" '
        f'font-size="14" font-weight="bold">{_esc(title)}</text>',
        *body, "</svg>", ""])


def bars(path: str, title: str, labels: Sequence[str],
         series: Sequence[Tuple[str, Sequence[Optional[float]]]], x_label: str,
         marks: Sequence[Tuple[float, str]] = ()) -> None:
    """One row per label, one bar per series; `marks` draws labelled vertical lines."""
    left, right, top, bar_h = 150, 30, 40, 12
    group_h = bar_h * len(series) + 8
    plot_h = group_h * len(labels)
    legend_h = 16 * len(series) + 8
    width, height = 640, top + plot_h + 40 + legend_h
    vals = [v for _, vs in series for v in vs if v is not None] + [m for m, _ in marks]
    lo, hi = min(0.0, min(vals, default=0.0)), max(vals, default=1.0)
    ticks = _ticks(lo, hi)
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
    pw = width - left - right

    def sx(v: float) -> float:
        return left + (v - lo) / (hi - lo) * pw

    body = []
    for t in ticks:
        body.append(f'<line x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{top + plot_h}" '
                    'stroke="#ddd"/>')
        body.append(f'<text x="{sx(t):.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                    f'{FONT}>{t:g}</text>')
    for r, label in enumerate(labels):
        y0 = top + r * group_h + 4
        body.append(f'<text x="{left - 6}" y="{y0 + group_h / 2}" text-anchor="end" '
                    f'{FONT}>{_esc(label)}</text>')
        for k, (_, vs) in enumerate(series):
            v = vs[r]
            if v is None:
                continue
            x0, x1 = sorted((sx(0.0), sx(v)))
            body.append(f'<rect x="{x0:.1f}" y="{y0 + k * bar_h}" width="{max(x1 - x0, 0.5):.1f}" '
                        f'height="{bar_h - 2}" fill="{PALETTE[k % len(PALETTE)]}">'
                        f'<title>{_esc(label)}: {v:.4g}</title></rect>')
    for m, name in marks:
        body.append(f'<line x1="{sx(m):.1f}" y1="{top - 4}" x2="{sx(m):.1f}" '
                    f'y2="{top + plot_h}" stroke="#333" stroke-dasharray="4 3"/>')
        body.append(f'<text x="{sx(m) + 3:.1f}" y="{top - 6}" {FONT}>{_esc(name)}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{top + plot_h + 30}" text-anchor="middle" '
                f'{FONT}>{_esc(x_label)}</text>')
    body += _legend([n for n, _ in series], left, top + plot_h + 50)
    with open(path, "w") as f:
        f.write(_frame(width, height, title, body))


def histograms(path: str, title: str, series: Sequence[Tuple[str, Sequence[float]]],
               x_label: str, bins: int = 30) -> None:
    """Overlaid step histograms (share of draws per bin) on common bins."""
    left, right, top, plot_h = 60, 30, 40, 220
    legend_h = 16 * len(series) + 8
    width, height = 640, top + plot_h + 40 + legend_h
    allv = [v for _, vs in series for v in vs]
    lo, hi = min(allv), max(allv)
    if hi <= lo:
        hi = lo + 1.0
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    shares = []
    for _, vs in series:
        counts = [0] * bins
        for v in vs:
            counts[min(int((v - lo) / (hi - lo) * bins), bins - 1)] += 1
        shares.append([c / max(len(vs), 1) for c in counts])
    top_share = max(max(s) for s in shares) or 1.0
    pw = width - left - right

    def sx(v: float) -> float:
        return left + (v - lo) / (hi - lo) * pw

    def sy(v: float) -> float:
        return top + plot_h - v / top_share * plot_h

    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + pw}" y2="{top + plot_h}" '
            'stroke="#333"/>']
    for t in _ticks(lo, hi):
        if lo <= t <= hi:
            body.append(f'<text x="{sx(t):.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                        f'{FONT}>{t:g}</text>')
    for t in _ticks(0.0, top_share, 4):
        if t <= top_share:
            body.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" '
                        f'{FONT}>{t:.0%}</text>')
    for k, share in enumerate(shares):
        pts = [f"{sx(edges[0]):.1f},{sy(0):.1f}"]
        for i, s in enumerate(share):
            pts += [f"{sx(edges[i]):.1f},{sy(s):.1f}", f"{sx(edges[i + 1]):.1f},{sy(s):.1f}"]
        pts.append(f"{sx(edges[-1]):.1f},{sy(0):.1f}")
        # Earlier series drawn wider, so a later one on top of it leaves it visible.
        width_k = 1.5 + 2.0 * (len(shares) - 1 - k)
        body.append(f'<polyline points="{" ".join(pts)}" fill="none" '
                    f'stroke-width="{width_k}" stroke="{PALETTE[k % len(PALETTE)]}"/>')
    body.append(f'<text x="{left + pw / 2}" y="{top + plot_h + 30}" text-anchor="middle" '
                f'{FONT}>{_esc(x_label)}</text>')
    body += _legend([n for n, _ in series], left, top + plot_h + 50)
    with open(path, "w") as f:
        f.write(_frame(width, height, title, body))

"""Writes BENCHMARKS.md from the result files bench/run.sh leaves in bench/out/results.

    python bench/report.py --results bench/out/results --out BENCHMARKS.md [--gpu bench/out/gpu]

Files read (each optional; a missing one shows as "not run"):
  angle_{ours,ref}_{run}[_aNN].jsonl, metrics_{ours,ref}_{run}[_aNN].jsonl
                                                                     score records per A/B run
                                                                     (and arch, as run.sh writes)
  train_{ours,ref}.jsonl, decode_{pillow,ours}.jsonl                throughput lines
  mem_{name}[_aNN].txt                                               /usr/bin/time -v output
  parity.txt, science.md, commands.txt, meta.json                    as run.sh writes them
  store.json                                                         runner/benches/store_bench.rs
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import charts  # noqa: E402  (matplotlib)

METRICS = ["params", "grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow", "naswot",
           "ntk_cond", "linear_regions", "zen"]


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def per_arch_seconds(res, kind, side):
    """{metric: {arch: [seconds per run]}} over every run file of one side."""
    out = defaultdict(lambda: defaultdict(list))
    for path in sorted(glob.glob(os.path.join(res, f"{kind}_{side}_*.jsonl"))):
        for rec in read_jsonl(path):
            for m, s in rec.get("seconds", {}).items():
                out[m][rec["arch"]].append(float(s))
    return out


def cell(s):
    """Text for a Markdown table cell: NB201 strings hold pipes."""
    return str(s).replace("|", "\\|")


def med(v):
    return statistics.median(v) if v else None


def fmt(v, nd=3):
    return "not run" if v is None else f"{v:.{nd}f}"


def ratio(a, b):
    return "n/a" if a is None or b in (None, 0) else f"{a / b:.2f}x"


def angle_table(res):
    ours, ref = per_arch_seconds(res, "angle", "ours"), per_arch_seconds(res, "angle", "ref")
    archs = list(dict.fromkeys(list(ref.get("angle_loss", {})) + list(ours.get("angle_loss", {}))))
    lines = ["| # | architecture | ours s (median) | reference s (median) | ours / reference |",
             "|---|---|---|---|---|"]
    tot_o, tot_r = [], []
    for i, arch in enumerate(archs):
        o = med(ours.get("angle_loss", {}).get(arch, []))
        r = med(ref.get("angle_loss", {}).get(arch, []))
        tot_o.append(o)
        tot_r.append(r)
        lines.append(f"| {i + 1} | `{cell(arch)}` | {fmt(o)} | {fmt(r)} | {ratio(o, r)} |")
    so = sum(tot_o) if tot_o and None not in tot_o else None
    sr = sum(tot_r) if tot_r and None not in tot_r else None
    n = len(archs) or 1
    lines.append(f"| | **mean per arch** | {fmt(so / n if so else None)} | "
                 f"{fmt(sr / n if sr else None)} | {ratio(so, sr)} |")
    lines += ["", goal_line(list(zip(tot_o, tot_r)))]
    return "\n".join(lines)


ANGLE_GOAL = 0.7  # issue 10: ours at most 0.7x the reference's seconds per architecture


def goal_line(pairs):
    """How many archs meet the angle_loss goal, and which do not (1-based, with their ratio)."""
    done = [(i + 1, o / r) for i, (o, r) in enumerate(pairs) if o is not None and r]
    if not done:
        return f"Goal: ours at most {ANGLE_GOAL}x per architecture; not measured."
    over = [f"{i} ({q:.2f}x)" for i, q in done if round(q, 2) > ANGLE_GOAL]
    tail = f"; over it: {', '.join(over)}" if over else ""
    return (f"Goal: ours at most {ANGLE_GOAL}x per architecture; "
            f"{len(done) - len(over)} of {len(done)} meet it{tail}.")


def metrics_table(res, kind="metrics", sides=("ours", "ref")):
    data = {s: per_arch_seconds(res, kind, s) for s in sides}
    lines = ["| metric | ours s/arch (median over archs of per-arch medians) | reference s/arch |"
             " ours / reference |", "|---|---|---|---|"]
    for m in METRICS:
        vals = {}
        for s in sides:
            per = [med(v) for v in data[s].get(m, {}).values()]
            vals[s] = med(per)
        lines.append(f"| {m} | {fmt(vals['ours'], 4)} | {fmt(vals['ref'], 4)} | "
                     f"{ratio(vals['ours'], vals['ref'])} |")
    return "\n".join(lines)


def gpu_table(gpu):
    """Reference seconds per arch on the GPU (second pass over the 20 fixed archs)."""
    recs = read_jsonl(os.path.join(gpu, "ref20_pass2.jsonl"))
    lines = ["| metric | reference s/arch (median over archs) |", "|---|---|"]
    for m in ["angle_loss"] + METRICS:
        v = [r["seconds"][m] for r in recs if m in r.get("seconds", {})]
        lines.append(f"| {m} | {fmt(med(v), 4)} |")
    train = read_jsonl(os.path.join(gpu, "train_ref.jsonl"))
    if train:
        lines += ["", throughput_table({"ref": train}, "net", "network (training, batch 96)")]
    return "\n".join(lines)


def throughput_table(rows_by_side, key, label):
    names = list(dict.fromkeys(r[key] for rows in rows_by_side.values() for r in rows))
    lines = [f"| {label} | ours images/s | reference images/s | ours / reference |",
             "|---|---|---|---|"]
    for n in names:
        v = {s: next((r["images_per_s"] for r in rows if r[key] == n), None)
             for s, rows in rows_by_side.items()}
        lines.append(f"| `{cell(n)}` | {fmt(v.get('ours'), 1)} | {fmt(v.get('ref'), 1)} | "
                     f"{ratio(v.get('ours'), v.get('ref'))} |")
    return "\n".join(lines)


def wall_seconds(text):
    """/usr/bin/time's h:mm:ss or m:ss(.ss) as seconds."""
    s = 0.0
    for part in text.split(":"):
        s = s * 60 + float(part)
    return s


def time_v_wall(text):
    """The elapsed wall clock of a `/usr/bin/time -v` report, in seconds (None when absent)."""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    return wall_seconds(wall.group(1)) if wall else None


def mem_table(res):
    """Peak RSS per command; the per-architecture pieces of one command (name_aNN) are one row:
    the largest peak, and the total wall clock over the pieces."""
    rows = defaultdict(list)  # name -> [(rss KiB or None, wall s or None)]
    for path in sorted(glob.glob(os.path.join(res, "mem_*.txt"))):
        text = open(path).read()
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        name = re.sub(r"_a\d+$", "", os.path.basename(path)[4:-4])
        rows[name].append((int(rss.group(1)) if rss else None, time_v_wall(text)))
    lines = ["| command | runs (archs) | peak RSS (MiB), largest | wall clock, total |",
             "|---|---|---|---|"]
    for name, vals in rows.items():
        rss = [r for r, _ in vals if r is not None]
        walls = [w for _, w in vals if w is not None]
        peak = f"{max(rss) / 1024:.0f}" if rss else "failed"
        m, sec = divmod(sum(walls), 60) if walls else (0, 0)
        lines.append(f"| {name} | {len(vals)} | {peak} | "
                     f"{f'{int(m)}:{sec:05.2f}' if walls else '?'} |")
    return "\n".join(lines) if len(lines) > 2 else "not run"


def store_table(res):
    """The object store's MB/s (runner/benches/store_bench.rs prints one JSON object)."""
    path = os.path.join(res, "store.json")
    if not os.path.exists(path):
        return "not run"
    r = json.load(open(path))
    base = r.get("fs_copy_mb_s")
    rows = [("plain file copy (`std::fs::copy`)", base, None),
            ("S3 upload (multipart, in-process s3s-fs on 127.0.0.1)", r.get("s3_upload_mb_s"), base),
            ("S3 download (sha256 verified)", r.get("s3_download_mb_s"), base),
            ("local folder upload (temporary file, then rename)", r.get("local_upload_mb_s"), base),
            ("local folder download", r.get("local_download_mb_s"), base)]
    lines = [f"{r.get('mb', '?')} MB object, {r.get('statistic', 'median')} of "
             f"{r.get('rounds', '?')} interleaved rounds.", "",
             "| transfer | MB/s | / file copy |", "|---|---|---|"]
    for name, v, b in rows:
        lines.append(f"| {name} | {fmt(v, 1)} | {ratio(v, b) if b else ''} |")
    return "\n".join(lines)


def sensitivity_section(res):
    """angle_loss of the reference on one set of weights, batch and draws, in several float
    arrangements (reference/sensitivity.py): how far rounding alone moves the 50-step value."""
    rows = [r for r in read_jsonl(os.path.join(res, "sensitivity.jsonl")) if "arch" in r]
    if not rows:
        return "not run"
    lines = ["| architecture | threads | conv weights | cos | loss |", "|---|---|---|---|---|"]
    for r in rows:
        arch = r["arch"].replace("|", "\\|")
        lines.append(f"| `{arch}` | {r['threads']} | {r['layout']} | {r['cos']:.6f} | "
                     f"{r['loss']:.6f} |")
    return "\n".join(lines)


def speed_ratios(res):
    """(label, ours / reference seconds) for angle_loss (sum over archs of per-arch medians) and
    each training-free metric (median over archs of per-arch medians), where both sides ran."""
    out = []
    ours, ref = per_arch_seconds(res, "angle", "ours"), per_arch_seconds(res, "angle", "ref")
    o = [med(v) for a, v in ours.get("angle_loss", {}).items() if a in ref.get("angle_loss", {})]
    r = [med(ref["angle_loss"][a]) for a in ours.get("angle_loss", {})
         if a in ref.get("angle_loss", {})]
    if o and sum(r) > 0:
        out.append(("angle_loss", sum(o) / sum(r)))
    data = {s: per_arch_seconds(res, "metrics", s) for s in ("ours", "ref")}
    for m in METRICS:
        vo = med([med(v) for v in data["ours"].get(m, {}).values()])
        vr = med([med(v) for v in data["ref"].get(m, {}).values()])
        if vo is not None and vr:
            out.append((m, vo / vr))
    return out


def plots(res, plot_dir, rel):
    """Writes the SVG plots; returns {section: Markdown image line} for those written."""
    os.makedirs(plot_dir, exist_ok=True)
    links = {}
    ratios = speed_ratios(res)
    if ratios:
        charts.bars(os.path.join(plot_dir, "speed.svg"),
                     "Seconds per architecture, ours / reference (lower is faster)",
                     [k for k, _ in ratios], [("ours / reference", [v for _, v in ratios])],
                     "ratio of seconds", marks=[(0.7, "goal 0.7"), (1.0, "equal")])
        links["speed"] = f"![ours / reference seconds per metric]({rel}/speed.svg)"
    path = os.path.join(res, "science.json")
    sci = json.load(open(path)) if os.path.exists(path) else {}
    d = sci.get("draws", {})
    if d.get("angle_loss+params", {}).get("values"):
        charts.histograms(
            os.path.join(plot_dir, "draws.svg"),
            f"Selected architecture over {d['angle_loss+params']['n']} draws of "
            f"{sci['draw_size']} from the pool",
            [("angle_loss + #Param (paper)", d["angle_loss+params"]["values"]),
             ("#Param only", d["params"]["values"]), ("best of the draw", d["best"]["values"])],
            "CIFAR-10 test accuracy (%)")
        links["draws"] = f"![accuracy of each selection over the draws]({rel}/draws.svg)"
    corr = sci.get("correlations", {})
    if corr:
        names = list(corr)
        charts.bars(
            os.path.join(plot_dir, "taus.svg"), "Kendall tau of each score part over the pool",
            names, [("with accuracy", [corr[k]["tau_accuracy"] for k in names]),
                    ("with #Param", [corr[k]["tau_params"] for k in names]),
                    ("with accuracy inside equal-#Param groups (mean)",
                     [corr[k]["tau_accuracy_in_groups"] for k in names])],
            "Kendall tau-b", marks=[(0.0, "")])
        links["taus"] = f"![Kendall tau per score part]({rel}/taus.svg)"
    return links


def machine(meta):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {mem} memory, {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, "
            f"torch {meta.get('torch', '?')}; threads per process: {meta.get('threads', '?')}; "
            f"load average at start: "
            f"{meta['starts'][0].split(' load ')[-1] if meta.get('starts') else meta.get('loadavg', '?')}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--gpu", default="")
    p.add_argument("--plots", default="", help="folder for the SVG plots (none when empty)")
    a = p.parse_args()
    res = a.results
    links = {}
    if a.plots:
        rel = os.path.relpath(a.plots, os.path.dirname(os.path.abspath(a.out)))
        links = plots(res, a.plots, rel)
    meta = json.load(open(os.path.join(res, "meta.json"))) if os.path.exists(
        os.path.join(res, "meta.json")) else {}

    def section_file(name, default="not run"):
        path = os.path.join(res, name)
        return open(path).read().strip() if os.path.exists(path) else default

    mode = "quick (`bench/run.sh --quick`)" if meta.get("quick") else "full (`bench/run.sh`)"
    out = [
        "# Benchmarks", "",
        "Written by `bench/run.sh` (see bench/README.md); every number below comes from the "
        "commands listed at the end. \"ours\" is the Rust runner (`nas-runner`), \"reference\" "
        "the PyTorch eager implementation in `bench/reference/`. A and B are interleaved per "
        "architecture (its two sides run back to back, the side that goes first alternating by "
        "architecture and run); seconds are the per-metric seconds each side records, medians "
        "over runs.", "",
        f"- Mode: {mode}; A/B runs: {meta.get('runs', '?')}"
        + (f" (training-free metrics: {meta['free_runs']})"
           if meta.get("free_runs", meta.get("runs")) != meta.get("runs") else "")
        + f"; training steps timed per network: {meta.get('train_steps', '?')}"
        + "; streams at once (JOBS): "
        f"{meta.get('jobs', 1)}; angle_loss steps: {meta.get('iters', 50)}; runner: "
        f"{meta.get('runner', 'not available')}.",
        *([f"- Run in {len(meta['starts'])} sittings (`--resume`), started: "
           + "; ".join(meta["starts"]) + "."] if len(meta.get("starts", [])) > 1 else []),
        f"- Machine: {machine(meta)}.",
        f"- Date: {meta.get('date', '?')}.",
        *([f"- Conditions: {meta['note']}"] if meta.get("note") else []),
        "- The CPU is shared with other work (see the load average): absolute seconds are "
        "inflated by it; the ratios of interleaved A/B runs are the numbers to compare.", "",
        "## 1. angle_loss, seconds per architecture (CPU)", "",
        angle_table(res), "",
        *([links["speed"], ""] if "speed" in links else []),
        "Score parity (same initial weights and batch through the exchange files, "
        "`bench/reference/check.py`, tolerance 1e-4 relative; angle_loss over 5 SGD steps, "
        "conv weights channels-last on both sides, as the runner keeps them on the CPU):", "",
        section_file("parity.txt"), "",
        "Float sensitivity of the 50-step value: the reference's own angle_loss on the same "
        "initial weights, batch and draws, with NCHW or channels-last conv weights (the same "
        "arithmetic through other kernels) and with 1 or 2 threads "
        "(`bench/reference/sensitivity.py`). SGD at lr 0.2 amplifies last-bit differences "
        "over 50 steps, so two correct implementations agree to 1e-4 only over a few steps "
        "(hence the 5-step parity above); the spread below is the metric's own rounding noise.",
        "", sensitivity_section(res), "",
        "## 2. Training-free metrics, seconds per architecture (CPU)", "",
        metrics_table(res), "",
        "## 3. Training throughput, batch 96 (CPU)", "",
        throughput_table({"ours": read_jsonl(os.path.join(res, "train_ours.jsonl")),
                          "ref": read_jsonl(os.path.join(res, "train_ref.jsonl"))},
                         "net", "network"), "",
        "## 4. JPEG decode + resize (CIFAR-10 test tar, one thread)", "",
        throughput_table({"ours": read_jsonl(os.path.join(res, "decode_ours.jsonl")),
                          "ref": read_jsonl(os.path.join(res, "decode_pillow.jsonl"))},
                         "size", "output size (px); reference = Pillow"), "",
        "## 5. Peak memory (/usr/bin/time -v)", "",
        mem_table(res), "",
        "## 6. Object store throughput", "",
        store_table(res), "",
    ]
    # Written by bench/operator-scale.sh (no A/B: the operator has no reference to run against).
    scale = os.path.join(os.path.dirname(os.path.abspath(__file__)), "operator-scale.md")
    if os.path.exists(scale):
        out += ["## 7. Operator at scale", "", open(scale).read().strip(), ""]
    # Written by hand from bench/reference/flops_check.py and `nas-runner inspect` (issue 22).
    flops = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flops.md")
    if os.path.exists(flops):
        out += ["## 8. FLOPs conventions", "", open(flops).read().strip(), ""]
    # Written by hand from bench/reference/train_parity.py and runner/tests/train_parity.rs.
    parity = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train-parity.md")
    if os.path.exists(parity):
        out += ["## 9. Trainer step parity", "", open(parity).read().strip(), ""]
    # Written by bench/train_accuracy.py from bench/train-accuracy.sh's runs (issue 22).
    accuracy = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train-accuracy.md")
    if os.path.exists(accuracy):
        out += ["## 10. Accuracy side by side (CIFAR-10)", "", open(accuracy).read().strip(), ""]
    gpu = a.gpu
    if gpu and os.path.exists(os.path.join(gpu, "ref20_pass2.jsonl")):
        out += ["## GPU (reference side, from bench/gpu.sh on a lent GPU machine)", "",
                "```", open(os.path.join(gpu, "machine.txt")).read().strip(), "```", "",
                gpu_table(gpu), ""]
    else:
        out += ["## GPU", "", "No GPU results (bench/out/gpu) were at hand when this file was "
                "written; `bench/gpu.sh` is the prepared run for a lent GPU machine.", ""]
    no_pool = ("No pool of scored NB201 architectures yet (bench/out/pool.jsonl: `nas-runner "
               "score` over bench/out/pool_archs.txt; see bench/README.md), so the angle_loss "
               "rows and the Kendall taus are still to come.")
    sci = section_file("science.md", no_pool)
    if sci.startswith("Without scores"):
        sci = no_pool + " What needs no scores:\n\n" + sci
    out += ["## Science: the paper's NB201 protocol over many draws", "", sci, "",
            *[links[k] + "\n" for k in ("draws", "taus") if k in links],
            "Public numbers over 1,000 draws: #Param pick 93.22 ± 0.50, best of the draw "
            "93.85 ± 0.23; the authors' logged pick on their draw: 94.045%.", "",
            "## Commands", "", "```", section_file("commands.txt", ""), "```", ""]
    with open(a.out, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()

"""The paper's NB201 CIFAR-10 protocol, judged over many draws (issue 10, "Science").

    python bench/science.py [--scores POOL.jsonl] [--data ../shared/data/nb201] [--draws 1000]
                            [--draw-size 100] [--seed 0] [--json OUT.json] [--md OUT.md]

`--scores` is `nas-runner score` output (or bench/reference/score.py's) over a pool of NB201
architectures, with `angle_loss` (and optionally `params` and other metrics). Arch strings are
matched with accuracy.csv's; #Param comes from the record or, if absent, from the NB201 formula.

Selection inside one draw of candidates, every rank an average rank, higher = better:
    metric rank = rank(rank(cos) + rank(-loss)),  search rank = metric rank + rank(#Param),
and the pick is the highest search rank (ties: the first candidate in draw order). The #Param
pick is the largest #Param (ties likewise); the best of the draw is its highest accuracy.
Reported: mean and std over `--draws` draws of `--draw-size` archs drawn without replacement
from the pool; Kendall tau-b of each score part with accuracy and with #Param over the pool,
overall and averaged inside the equal-#Param groups (pool.sh's metric sets are joined by arch;
each part over the archs that have it; a null value, i.e. non-finite, ranks last as in the
runner's select); and the authors' own draw
(random.seed(1); random.sample(range(15625), 100)) when the pool holds all of it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
from typing import Dict, List, Optional

import numpy as np
from scipy.stats import kendalltau, rankdata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))

from nb201 import param_count_formula, parse_arch  # noqa: E402

HIGHER_IS_BETTER = {"ntk_cond": False}  # every other metric: higher is better


def load_benchmark(data_dir: str):
    acc, index = {}, {}
    with open(os.path.join(data_dir, "accuracy.csv")) as f:
        for row in csv.DictReader(f):
            index[row["arch"]] = int(row["index"])
            acc[int(row["index"])] = float(row["cifar10_test"])
    with open(os.path.join(data_dir, "equal_param_groups.json")) as f:
        groups = [list(map(int, g)) for g in json.load(f)]
    return acc, index, groups


def load_pool(path: str, index: Dict[str, int]) -> List[dict]:
    """One entry per arch with an angle_loss value: idx, cos, loss, degenerate, params, and the
    other metric values of every record of that arch (pool.sh scores metric sets apart)."""
    merged: Dict[int, dict] = {}
    order: List[int] = []
    with open(path) as f:
        for ln_no, ln in enumerate(f, 1):
            if not ln.strip():
                continue
            try:
                rec = json.loads(ln)
            except ValueError as e:
                raise ValueError(f"{path}:{ln_no}: not JSON ({e})") from e
            arch = rec.get("arch")
            if arch not in index:
                raise ValueError(f"{path}:{ln_no}: arch {arch!r} is not in accuracy.csv")
            i = index[arch]
            if i not in merged:
                merged[i] = {"idx": i, "arch": arch}
                order.append(i)
            e = merged[i]
            for k, v in rec.get("metrics", {}).items():
                if k in e:
                    continue  # the first record of a metric wins (duplicates across sets)
                if k == "angle_loss" and isinstance(v, dict):
                    e.update({"angle_loss": True, "cos": float(v["cos"]),
                              "loss": float(v["loss"]),
                              "degenerate": bool(v.get("degenerate", False))})
                elif v is None:
                    # A non-finite value (Zen's log of a zero BN variance, NASWOT's singular
                    # kernel) is written as null; the runner's select ranks it last.
                    e[k] = None
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    e[k] = float(v)  # a failed metric is an error object: left out
    pool = []
    for i in order:
        e = merged[i]
        arch = e.pop("arch")
        if not e.pop("angle_loss", False):
            continue  # no (successful) angle_loss record: not in the pool
        if "params" not in e:
            e["params"] = float(param_count_formula(parse_arch(arch)))
        pool.append(e)
    return pool


def select(cands: List[dict]) -> int:
    """Position in `cands` of the paper's pick (angle_loss + #Param)."""
    cos = np.array([c["cos"] for c in cands])
    loss = np.array([c["loss"] for c in cands])
    params = np.array([c["params"] for c in cands])
    metric = rankdata(rankdata(cos) + rankdata(-loss))
    search = metric + rankdata(params)
    return int(np.argmax(search))


def draw_stats(pool: List[dict], acc: Dict[int, float], draws: int, size: int, seed: int,
               scored: bool = True):
    rng = np.random.default_rng(seed)
    picks, param_picks, bests = [], [], []
    picked: Dict[int, int] = {}
    for _ in range(draws):
        cands = [pool[i] for i in rng.choice(len(pool), size=size, replace=False)]
        if scored:
            idx = cands[select(cands)]["idx"]
            picked[idx] = picked.get(idx, 0) + 1
            picks.append(acc[idx])
        param_picks.append(acc[cands[int(np.argmax([c["params"] for c in cands]))]["idx"]])
        bests.append(max(acc[c["idx"]] for c in cands))

    def ms(v):
        if not v:
            return {"mean": None, "std": None, "n": 0, "values": []}
        return {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v),
                "values": [round(float(x), 4) for x in v]}  # per draw, for the plots

    top = sorted(picked.items(), key=lambda kv: -kv[1])[:3]
    return {"angle_loss+params": ms(picks), "params": ms(param_picks), "best": ms(bests),
            "top_picks": [{"index": i, "accuracy": acc[i], "share": n / draws} for i, n in top]}


def tau(a, b) -> Optional[float]:
    if len(a) < 3:
        return None
    t = kendalltau(a, b).statistic
    return None if t is None or math.isnan(t) else float(t)


def correlations(pool: List[dict], acc: Dict[int, float], groups: List[List[int]]) -> dict:
    """Kendall tau-b of each part with accuracy and #Param, overall and inside the groups."""
    parts = {"cos": [c["cos"] for c in pool], "-loss": [-c["loss"] for c in pool]}
    if pool:
        parts["metric_rank"] = list(rankdata(rankdata(parts["cos"]) + rankdata(parts["-loss"])))
    # Every part as {arch index: value}; a metric scored on part of the pool (another
    # pool.sh set, not yet as far) is correlated over the archs that have it, n says how many.
    values = {k: dict(zip((c["idx"] for c in pool), v)) for k, v in parts.items()}
    extra = sorted({k for c in pool for k in c} - {"idx", "cos", "loss", "degenerate", "params"})
    for k in extra:
        sign = 1.0 if HIGHER_IS_BETTER.get(k, True) else -1.0
        values[k if sign > 0 else f"-{k}"] = {
            c["idx"]: -math.inf if c[k] is None else sign * c[k] for c in pool if k in c}
    params = {c["idx"]: c["params"] for c in pool}
    values["params"] = params
    out = {}
    for name, vals in values.items():
        idxs = list(vals)
        in_groups = []
        for g in groups:
            members = [i for i in g if i in vals]
            t = tau([vals[i] for i in members], [acc[i] for i in members])
            if t is not None:
                in_groups.append(t)
        out[name] = {
            "n": len(idxs),
            "tau_accuracy": tau([vals[i] for i in idxs], [acc[i] for i in idxs]),
            "tau_params": tau([vals[i] for i in idxs], [params[i] for i in idxs]),
            "tau_accuracy_in_groups": float(np.mean(in_groups)) if in_groups else None,
            "groups_used": len(in_groups),
        }
    return out


def authors_draw(pool: List[dict], acc: Dict[int, float]) -> dict:
    random.seed(1)
    idxs = random.sample(range(15625), 100)
    by_idx = {c["idx"]: c for c in pool}
    missing = [i for i in idxs if i not in by_idx]
    if missing:
        return {"indices_first5": idxs[:5], "missing": len(missing)}
    cands = [by_idx[i] for i in idxs]
    pick = cands[select(cands)]
    return {"indices_first5": idxs[:5], "missing": 0, "pick_index": pick["idx"],
            "pick_accuracy": acc[pick["idx"]], "best_accuracy": max(acc[i] for i in idxs),
            "params_pick_accuracy": acc[cands[int(np.argmax([c["params"] for c in cands]))]["idx"]]}


def markdown(res: dict) -> str:
    d = res["draws"]
    n = max(v["n"] for v in d.values())
    if "authors_draw" not in res:
        return "\n".join([
            f"Without scores: the whole space ({res['pool_size']} architectures), {n} draws of "
            f"{res['draw_size']}, #Param from the NB201 formula.", "",
            "| selection | CIFAR-10 test accuracy, mean ± std over draws |", "|---|---|",
            f"| #Param only | {d['params']['mean']:.2f} ± {d['params']['std']:.2f} |",
            f"| best of the draw | {d['best']['mean']:.2f} ± {d['best']['std']:.2f} |"]) + "\n"
    lines = [f"Pool: {res['pool_size']} NB201 architectures ({res['degenerate']} degenerate); "
             f"{n} draws of {res['draw_size']}.", "",
             "| selection | CIFAR-10 test accuracy, mean ± std over draws |", "|---|---|"]
    if res["pool_size"] < 3 * res["draw_size"]:
        lines[0] += (f" The pool is under {3 * res['draw_size']} architectures: its draws overlap "
                     "heavily, so the spread below understates the space's.")
    for k, label in (("angle_loss+params", "angle_loss + #Param (paper)"),
                     ("params", "#Param only"), ("best", "best of the draw")):
        if d[k]["n"]:
            lines.append(f"| {label} | {d[k]['mean']:.2f} ± {d[k]['std']:.2f} |")
    if res.get("top_picks"):
        lines += ["", "The paper's most frequent picks: " + "; ".join(
            f"index {t['index']} ({t['accuracy']:.2f}%) in {100 * t['share']:.0f}% of draws"
            for t in res["top_picks"]) + ". A small pool leaves few large-#Param archs to pick "
            "from, so a few archs decide the spread."]
    a = res["authors_draw"]
    lines += ["", "Authors' draw (random.seed(1); random.sample(range(15625), 100)): " + (
        f"pick index {a['pick_index']} at {a['pick_accuracy']:.3f}%, best of the draw "
        f"{a['best_accuracy']:.3f}%, #Param pick {a['params_pick_accuracy']:.3f}%."
        if not a["missing"] else f"{a['missing']} of its 100 archs are not in the pool.")]
    lines += ["", "| score part | archs | tau with accuracy | tau with #Param | mean tau in "
              "equal-#Param groups (groups with 3+ archs) |", "|---|---|---|---|---|"]

    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    for k, v in res["correlations"].items():
        lines.append(f"| {k} | {v['n']} | {f(v['tau_accuracy'])} | {f(v['tau_params'])} | "
                     f"{f(v['tau_accuracy_in_groups'])} ({v['groups_used']}) |")
    return "\n".join(lines) + "\n"


def baselines(data_dir: str, draws: int, size: int, seed: int) -> dict:
    """No scores: the #Param pick and the best of each draw over the whole space."""
    acc, index, _ = load_benchmark(data_dir)
    pool = [{"idx": i, "params": float(param_count_formula(parse_arch(a)))}
            for a, i in index.items()]
    stats = draw_stats(pool, acc, draws, size, seed, scored=False)
    stats.pop("top_picks")
    return {"pool_size": len(pool), "draw_size": size, "draws": stats}


def run(scores: str, data_dir: str, draws: int, size: int, seed: int) -> dict:
    acc, index, groups = load_benchmark(data_dir)
    pool = load_pool(scores, index)
    if len(pool) < size:
        raise ValueError(f"{scores}: {len(pool)} scored archs, fewer than a draw of {size}")
    stats = draw_stats(pool, acc, draws, size, seed)
    top = stats.pop("top_picks")
    return {"pool_size": len(pool), "degenerate": sum(c["degenerate"] for c in pool),
            "draw_size": size, "draws": stats, "top_picks": top,
            "correlations": correlations(pool, acc, groups),
            "authors_draw": authors_draw(pool, acc)}


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scores", help="omit for the score-free baselines over the whole space")
    p.add_argument("--data", default=os.path.join(here, "../../shared/data/nb201"))
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--draw-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.add_argument("--md")
    a = p.parse_args(argv)
    try:
        res = (run(a.scores, a.data, a.draws, a.draw_size, a.seed) if a.scores
               else baselines(a.data, a.draws, a.draw_size, a.seed))
    except (OSError, ValueError) as e:
        print(f"science: {e}", file=sys.stderr)
        return 2
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    md = markdown(res)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

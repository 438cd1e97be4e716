"""Self-check of science.py on synthetic scores files (no runner needed).

    bench/.venv/bin/python bench/test_science.py [--data ../shared/data/nb201]

Prints 'N passed, N failed' and exits 1 on a failure.
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import science  # noqa: E402


def write_scores(path, acc, index, cos_of, loss_of, subset=None):
    with open(path, "w") as f:
        for arch, i in index.items():
            if subset is not None and i not in subset:
                continue
            rec = {"arch": arch, "metrics": {"angle_loss": {
                "cos": cos_of(acc[i]), "loss": loss_of(acc[i]), "degenerate": False},
                "synflow": acc[i] * 3.0}, "seconds": {}}
            f.write(json.dumps(rec) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(HERE, "../../shared/data/nb201"))
    a = p.parse_args()
    acc, index, groups = science.load_benchmark(a.data)
    results = []

    def check(name, cond, detail=""):
        results.append(bool(cond))
        print(f"{'ok  ' if cond else 'FAIL'} {name} {detail}")

    # Hand-computed fusion: cos ranks [1,2,3], -loss ranks [3,1,2] -> sums [4,3,5] -> metric
    # ranks [2,1,3]; params ranks [1,3,2] -> search [3,4,5]: the third candidate.
    cands = [{"cos": 0.1, "loss": 1.0, "params": 10}, {"cos": 0.2, "loss": 3.0, "params": 30},
             {"cos": 0.3, "loss": 2.0, "params": 20}]
    check("select hand case", science.select(cands) == 2)
    cands[2]["params"] = 5  # search [3.5, 4, 4.5]... params ranks [2,3,1] -> [4,4,4]: first
    check("select tie -> first in draw order", science.select(cands) == 0)

    with tempfile.TemporaryDirectory() as d:
        oracle = os.path.join(d, "oracle.jsonl")
        write_scores(oracle, acc, index, lambda x: x / 100.0, lambda x: 100.0 - x)
        res = science.run(oracle, a.data, 200, 100, 0)
        c = res["correlations"]
        check("pool is the whole space", res["pool_size"] == 15625, res["pool_size"])
        check("oracle tau(cos, acc) = 1", abs(c["cos"]["tau_accuracy"] - 1) < 1e-12)
        check("oracle tau(-loss, acc) = 1", abs(c["-loss"]["tau_accuracy"] - 1) < 1e-12)
        check("oracle tau in groups = 1",
              abs(c["cos"]["tau_accuracy_in_groups"] - 1) < 1e-12 and c["cos"]["groups_used"] == 8)
        check("extra metric carried", abs(c["synflow"]["tau_accuracy"] - 1) < 1e-12)
        check("params from the formula correlate with accuracy",
              0.4 < c["params"]["tau_accuracy"] < 0.8, c["params"]["tau_accuracy"])
        dr = res["draws"]
        check("best >= angle pick >= params pick (oracle)",
              dr["best"]["mean"] >= dr["angle_loss+params"]["mean"] >= dr["params"]["mean"],
              {k: round(v["mean"], 3) for k, v in dr.items()})
        tp = res["top_picks"]
        check("top picks: at most 3, most frequent first, shares of the draws",
              1 <= len(tp) <= 3 and all(a["share"] >= b["share"] for a, b in zip(tp, tp[1:]))
              and 0 < sum(t["share"] for t in tp) <= 1 and "most frequent picks" in
              science.markdown(res), tp)
        ad = res["authors_draw"]
        check("authors' draw indices", ad["indices_first5"] == [2201, 9325, 13884, 13144, 12513])
        check("authors' draw best is their logged 94.045%",
              abs(ad["best_accuracy"] - 94.045) < 0.01, ad["best_accuracy"])

        anti = os.path.join(d, "anti.jsonl")
        write_scores(anti, acc, index, lambda x: -x, lambda x: x)
        c = science.run(anti, a.data, 50, 100, 0)["correlations"]
        check("anti-oracle tau = -1", abs(c["cos"]["tau_accuracy"] + 1) < 1e-12)

        rng = np.random.default_rng(0)
        noise = os.path.join(d, "noise.jsonl")
        sub = set(rng.choice(15625, 400, replace=False).tolist())
        write_scores(noise, acc, index, lambda x: float(rng.random()),
                     lambda x: float(rng.random()), subset=sub)
        res = science.run(noise, a.data, 300, 100, 0)
        c = res["correlations"]
        check("random scores: |tau| small", abs(c["cos"]["tau_accuracy"]) < 0.1,
              c["cos"]["tau_accuracy"])
        check("partial pool: authors' draw reported missing", res["authors_draw"]["missing"] > 0)
        r2 = science.run(noise, a.data, 300, 100, 0)
        check("deterministic with a seed", r2["draws"] == res["draws"])
        md = science.markdown(res)
        check("markdown table", "| #Param only |" in md and "| cos |" in md)

        # pool.sh sets: an angle_loss set over 400 archs, a second set over 150 of them (one
        # failed), concatenated in any order: the second set's metric joins by arch.
        sets = os.path.join(d, "sets.jsonl")
        half = sorted(sub)[:150]
        with open(sets, "w") as f:
            for i in half:
                arch = next(k for k, v in index.items() if v == i)
                m = ({"ntk_cond": {"error": "singular"}} if i == half[0]
                     else {"ntk_cond": 100.0 - acc[i], "grasp": 1.0,
                           "zen": None if i == half[1] else acc[i]})
                f.write(json.dumps({"arch": arch, "metrics": m, "seconds": {}}) + "\n")
            with open(noise) as g:
                f.write(g.read())
        res = science.run(sets, a.data, 50, 100, 0)
        c = res["correlations"]
        check("sets: the pool is the angle_loss archs", res["pool_size"] == 400, res["pool_size"])
        check("sets: a partial metric is correlated over the archs it has",
              c["-ntk_cond"]["n"] == 149 and abs(c["-ntk_cond"]["tau_accuracy"] - 1) < 1e-12,
              c["-ntk_cond"])
        check("sets: a constant metric has no tau", c["grasp"]["tau_accuracy"] is None)
        worst = min(range(1, 150), key=lambda j: acc[half[j]]) == 1
        check("sets: a null (non-finite) value ranks last, as the runner's select ranks it",
              c["zen"]["n"] == 149 and (abs(c["zen"]["tau_accuracy"] - 1) < 1e-12) == worst
              and c["zen"]["tau_accuracy"] > 0.95, c["zen"])
        check("sets: whole-pool parts keep n", c["cos"]["n"] == 400 and c["params"]["n"] == 400)
        check("sets: markdown names n", "| -ntk_cond | 149 |" in science.markdown(res))

    base = science.baselines(a.data, 300, 100, 0)
    d = base["draws"]
    check("baselines: no angle pick, #Param and best near the public 93.22 / 93.85",
          d["angle_loss+params"]["n"] == 0 and abs(d["params"]["mean"] - 93.22) < 0.15
          and abs(d["best"]["mean"] - 93.85) < 0.1, {k: v["mean"] for k, v in d.items()})
    check("baselines markdown", "| #Param only |" in science.markdown(base))

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

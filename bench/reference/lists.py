"""Architecture lists the benchmarks use, made reproducibly from accuracy.csv.

    python lists.py fixed20 CSV > bench/archs20.txt      # the 20 fixed NB201 archs
    python lists.py pool CSV > POOL.txt                   # every arch, the authors' draw first

fixed20: Python random.Random(20).sample of the indices whose cell holds a conv or pooling op.
pool: the authors' own draw (random.seed(1); random.sample(range(15625), 100)) first, then the
rest in the order of random.Random(2).shuffle, so a pool cut short by time still holds that draw
and is a uniform sample of the space otherwise.
"""

import csv
import random
import sys

from nb201 import has_learnable_ops, parse_arch


def read_archs(path):
    with open(path) as f:
        return [r["arch"] for r in csv.DictReader(f)]


def authors_draw():
    random.seed(1)
    return random.sample(range(15625), 100)


def main():
    kind, path = sys.argv[1], sys.argv[2]
    archs = read_archs(path)
    if kind == "fixed20":
        ok = [i for i, a in enumerate(archs) if has_learnable_ops(parse_arch(a))]
        order = random.Random(20).sample(ok, 20)
    elif kind == "pool":
        first = authors_draw()
        rest = [i for i in range(len(archs)) if i not in set(first)]
        random.Random(2).shuffle(rest)
        order = first + rest
    else:
        raise SystemExit(f"unknown list {kind!r}: fixed20 or pool")
    for i in order:
        print(archs[i])


if __name__ == "__main__":
    main()

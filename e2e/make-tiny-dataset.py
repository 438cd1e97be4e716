#!/usr/bin/env python3
"""Writes a tiny data set in the Fashion-MNIST IDX format (gzip), standard library only.

Ten classes of 28x28 greyscale images; class c shows a bright band at rows 2c..2c+4 over
uniform noise, so that short trainings learn something. Deterministic (seeded).

    make-tiny-dataset.py OUT_DIR [--train N] [--test N]
"""
import argparse
import gzip
import os
import random
import struct


def images(n, rng):
    labels, pixels = [], bytearray()
    for i in range(n):
        c = i % 10
        labels.append(c)
        for r in range(28):
            band = 2 * c <= r < 2 * c + 5
            for _ in range(28):
                v = rng.randint(0, 80) + (150 if band else 0)
                pixels.append(min(v, 255))
    return labels, bytes(pixels)


def write(path, magic, dims, payload):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f:
        f.write(struct.pack(">I", magic))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=200)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(7)
    for prefix, n in (("train", a.train), ("t10k", a.test)):
        labels, pixels = images(n, rng)
        write(os.path.join(a.out, f"{prefix}-images-idx3-ubyte.gz"), 0x00000803, (n, 28, 28), pixels)
        write(os.path.join(a.out, f"{prefix}-labels-idx1-ubyte.gz"), 0x00000801, (n,), bytes(labels))


if __name__ == "__main__":
    main()

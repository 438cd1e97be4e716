"""Pillow baseline of the stage-data benchmark: JPEG decode + resize, images per second.

    python decode_speed.py --tar ../shared/data/cifar10/test.tar.gz [--size 32,64] [--limit N]
                           [--repeats 3]

The tar is read into memory first (its gunzip time is reported apart), then each image is
decoded to RGB and resized (bilinear) to size x size, single-threaded. One JSON line per size:
{"size", "images", "seconds" (median of repeats), "images_per_s", "read_seconds"}.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cifar  # noqa: E402


def decode_resize(data: bytes, size: int) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return im.tobytes()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tar", required=True)
    p.add_argument("--size", default="32,64")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    members = cifar.read_members(a.tar)
    read_s = time.perf_counter() - t0
    blobs = [data for items in members.values() for _, data in items]
    if a.limit:
        blobs = blobs[: a.limit]
    for size in (int(s) for s in a.size.split(",")):
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for b in blobs:
                decode_resize(b, size)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(json.dumps({"size": size, "images": len(blobs), "seconds": round(med, 4),
                          "images_per_s": round(len(blobs) / med, 1),
                          "read_seconds": round(read_s, 4), "repeats": a.repeats}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""train_cifar.py on Pillow's pixels with the training set in another order: a fixed random
permutation (seed 12345) instead of the tarball's class-sorted order. Under the trainer's own
full shuffle each epoch the order of the set cannot matter in distribution, so this run measures
how far one seed's result moves when only the pairing of images with random draws changes
(BENCHMARKS.md section 10). Same arguments as train_cifar.py.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_cifar  # noqa: E402

_load_split = train_cifar.load_split


def load_permuted(path: str):
    x, y = _load_split(path)
    if os.path.basename(path).startswith("train"):
        p = torch.randperm(len(y), generator=torch.Generator().manual_seed(12345))
        x, y = x[p].contiguous(), y[p].contiguous()
    return x, y


train_cifar.load_split = load_permuted

if __name__ == "__main__":
    train_cifar.main()

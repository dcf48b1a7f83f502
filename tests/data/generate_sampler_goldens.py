#!/usr/bin/python3
"""Writes goldens/distributed_sampler.txt: the indices PyTorch's DistributedSampler gives each
rank without shuffling, for small data set sizes N, world sizes W and both drop_last settings.
One line per (N, W, drop_last, rank): "N W drop_last rank: i0 i1 ...".
Run with the PyTorch the project tests against: /usr/bin/python3 generate_sampler_goldens.py"""
import os

import torch
from torch.utils.data.distributed import DistributedSampler

lines = [f"# torch {torch.__version__}, DistributedSampler(shuffle=False)"]
for n in range(0, 14):
    for w in range(1, 6):
        for drop_last in (False, True):
            for rank in range(w):
                s = DistributedSampler(range(n), num_replicas=w, rank=rank, shuffle=False,
                                       drop_last=drop_last)
                lines.append(f"{n} {w} {int(drop_last)} {rank}: " + " ".join(map(str, list(s))))
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goldens",
                   "distributed_sampler.txt")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")

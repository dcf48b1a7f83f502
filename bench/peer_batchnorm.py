#!/usr/bin/python3
"""PyTorch peer of bench/batchnorm_bench.cpp: BatchNorm2d at one thread, same shapes and modes.

Run with Debian's interpreter (/usr/bin/python3 has python3-torch). Prints JSON:
  {"torch": version, "threads": 1, "rows": [{"name", "shape", "mode", "ms", "reps_ms"}]}

Methodology, as Google Benchmark runs ours (MinWarmUpTime 0.05 s, MinTime 0.05 s, 9 repetitions,
median): warm up for at least --warmup seconds, size a repetition to at least --min-time seconds,
time --reps repetitions, report the median per-iteration wall time. Modes:
  train_forward     module in train mode, y = bn(x); autograd records the graph (saves x by
                    reference), as ours keeps what backward needs.
  forward_backward  y = bn(x) then dx, dweight, dbias = autograd.grad(y, (x, w, b), dy): fresh
                    gradients each iteration, no accumulation pass into x.grad.
  eval_forward      module in eval mode with running stats, y = bn(x).
"""
import argparse
import json
import sys

import torch

from peer_timing import measure  # bench/peer_timing.py, beside this script

SHAPES = [(32, 64, 56, 56), (64, 256, 14, 14), (128, 512, 7, 7)]
MODES = ["train_forward", "forward_backward", "eval_forward"]


def make_step(shape, mode):
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen) * 2.0 + 0.5
    dy = torch.randn(shape, generator=gen)
    bn = torch.nn.BatchNorm2d(c)
    if mode == "eval_forward":
        with torch.no_grad():
            bn.running_mean.fill_(0.25)
            bn.running_var.fill_(3.0)
        bn.eval()
        return lambda: bn(x)
    if mode == "train_forward":
        return lambda: bn(x)
    x.requires_grad_(True)
    params = (x, bn.weight, bn.bias)
    return lambda: torch.autograd.grad(bn(x), params, dy)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--min-time", type=float, default=0.05)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for shape in SHAPES:
        for mode in MODES:
            ms, samples = measure(make_step(shape, mode), args.warmup, args.min_time, args.reps)
            name = "BatchNorm2d/%s/%s" % (mode, "x".join(map(str, shape)))
            rows.append({"name": name, "shape": list(shape), "mode": mode, "ms": ms,
                         "reps_ms": samples})
            print("%-45s %8.3f ms" % (name, ms), file=sys.stderr)
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows},
              sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

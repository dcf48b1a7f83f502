#!/usr/bin/python3
"""PyTorch peer of bench/quant/quant_bn_bench.cpp: quantized BatchNorm2d at one thread.

Run with Debian's interpreter (/usr/bin/python3 has python3-torch 1.13). Prints JSON:
  {"torch": version, "engine": ..., "threads": 1, "rows": [{"name", "ms", "reps_ms"}]}

Rows (input (32, 64, 56, 56), quint8, scale 0.05, zero_point 128; output scale 0.04, zp 120):
  QuantBatchNorm2d/module_forward/...                torch.ao.nn.quantized.BatchNorm2d on a
                                                     contiguous (NCHW) input, as ours is given
  QuantBatchNorm2d/module_forward_channels_last/...  the same on a channels_last input, the
                                                     layout PyTorch's kernel works in (it
                                                     converts NCHW input to it first)
  BatchNorm2d/eval_forward/...                       float torch.nn.BatchNorm2d in eval
Method, as Google Benchmark runs ours: warm up for --warmup seconds, size a repetition to at
least --min-time seconds, time --reps repetitions, report the median per-iteration wall time.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from peer_timing import measure  # noqa: E402  (bench/peer_timing.py)

SHAPE = (32, 64, 56, 56)
NAME = "x".join(map(str, SHAPE))


def set_state(bn):
    """The per-channel values quant_bn_bench.cpp uses."""
    c = torch.arange(SHAPE[1], dtype=torch.float32)
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.01 * c)
        bn.bias.copy_(0.1 - 0.003 * c)
        bn.running_mean.copy_(0.25 + 0.002 * c)
        bn.running_var.copy_(3.0 + 0.01 * c)


def steps():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(SHAPE, generator=gen) * 2.0 + 0.5
    qx = torch.quantize_per_tensor(x, 0.05, 128, torch.quint8)
    qbn = torch.ao.nn.quantized.BatchNorm2d(SHAPE[1])
    set_state(qbn)
    qbn.scale = torch.tensor(0.04)
    qbn.zero_point = torch.tensor(120)
    qx_cl = qx.contiguous(memory_format=torch.channels_last)
    fbn = torch.nn.BatchNorm2d(SHAPE[1])
    set_state(fbn)
    fbn.eval()
    xf = qx.dequantize()
    return [("QuantBatchNorm2d/module_forward/" + NAME, lambda: qbn(qx)),
            ("QuantBatchNorm2d/module_forward_channels_last/" + NAME, lambda: qbn(qx_cl)),
            ("BatchNorm2d/eval_forward/" + NAME, lambda: fbn(xf))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--min-time", type=float, default=0.1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--engine", default="onednn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.backends.quantized.engine = args.engine  # the kernel is the same for every engine
    rows = []
    with torch.no_grad():
        for name, step in steps():
            ms, samples = measure(step, args.warmup, args.min_time, args.reps)
            rows.append({"name": name, "ms": ms, "reps_ms": samples})
    print(json.dumps({"torch": torch.__version__, "engine": args.engine,
                      "threads": torch.get_num_threads(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

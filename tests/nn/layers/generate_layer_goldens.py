#!/usr/bin/python3
"""Writes the PyTorch goldens of syncbn's convolution and pooling layers.

Run from anywhere with Debian's PyTorch 1.13 (the `python3` first on PATH may have no torch):

    /usr/bin/python3 tests/nn/layers/generate_layer_goldens.py

It deletes and rewrites tests/nn/layers/goldens/ and is deterministic: running it again gives
byte-identical files. The goldens are committed, so the tests need no PyTorch.

Layout (read by layer_goldens_test.cpp):
  goldens/cases.txt   one line per case: `name type=<layer> key=value ...`; sizes are one
                      number (given as a scalar, as a user writes `kernel_size=3`) or a
                      comma-separated list (one per spatial dimension)
  goldens/<case>/     input.npy, grad_output.npy, weight.npy, bias.npy      float32
                      output.npy, dx.npy, dweight.npy, dbias.npy            float64
                      repr.txt                                              PyTorch's repr

Inputs and parameters are drawn in float64 and rounded once to float32, the values the C++
side computes with; PyTorch then runs in float64 on them, so the goldens carry PyTorch's
semantics without its float32 rounding.
"""
import pathlib
import shutil
import zlib

import numpy as np
import torch
from torch import nn

GOLDENS = pathlib.Path(__file__).resolve().parent / "goldens"
F64 = torch.float64


def conv(name, dims, in_ch, out_ch, kernel, shape, **opts):
    return dict(name=name, type=f"conv{dims}d", dims=dims, shape=shape,
                args=dict(in_channels=in_ch, out_channels=out_ch, kernel_size=kernel, **opts))


def pool(name, kind, dims, shape, **args):
    return dict(name=name, type=f"{kind}{dims}d", dims=dims, shape=shape, args=args)


CASES = [
    conv("conv1d_basic", 1, 3, 4, 3, (2, 3, 10)),
    conv("conv1d_stride_pad_dilation_groups", 1, 4, 6, 3, (2, 4, 13), stride=2, padding=2,
         dilation=2, groups=2),
    conv("conv1d_depthwise_no_bias", 1, 3, 6, 4, (3, 3, 9), padding=1, groups=3, bias=False),
    conv("conv2d_stride_pad", 2, 3, 4, 3, (2, 3, 7, 6), stride=2, padding=1),
    conv("conv2d_dilation_groups", 2, 4, 4, 3, (2, 4, 8, 7), padding=(2, 1), dilation=(2, 1),
         groups=2),
    conv("conv2d_asym_no_bias", 2, 2, 3, (2, 3), (3, 2, 6, 7), stride=(1, 2), padding=(1, 0),
         bias=False),
    conv("conv3d_pad_groups", 3, 4, 2, 3, (2, 4, 4, 5, 4), padding=1, groups=2),
    conv("conv3d_stride_dilation", 3, 2, 3, (2, 3, 2), (2, 2, 6, 7, 5), stride=(2, 1, 2),
         dilation=(1, 2, 1), bias=False),
    pool("max_pool1d_pad_ceil", "max_pool", 1, (2, 3, 10), kernel_size=3, stride=2, padding=1,
         ceil_mode=True),
    pool("max_pool1d_unbatched", "max_pool", 1, (3, 9), kernel_size=2),
    pool("max_pool2d_resnet_stem", "max_pool", 2, (2, 2, 9, 8), kernel_size=3, stride=2,
         padding=1),
    pool("max_pool2d_ceil_asym", "max_pool", 2, (2, 3, 7, 6), kernel_size=(3, 2),
         stride=(2, 2), padding=(1, 0), ceil_mode=True),
    pool("max_pool2d_dilation", "max_pool", 2, (1, 2, 9, 9), kernel_size=3, stride=2,
         padding=1, dilation=2),
    pool("max_pool3d_pad_ceil", "max_pool", 3, (2, 2, 5, 6, 5), kernel_size=2, stride=2,
         padding=1, ceil_mode=True),
    pool("avg_pool1d_pad_ceil", "avg_pool", 1, (2, 3, 10), kernel_size=4, stride=3, padding=2,
         ceil_mode=True),
    pool("avg_pool1d_exclude_pad", "avg_pool", 1, (2, 2, 7), kernel_size=3, stride=2, padding=1,
         count_include_pad=False),
    pool("avg_pool2d_default_stride", "avg_pool", 2, (2, 3, 6, 7), kernel_size=2),
    pool("avg_pool2d_ceil_include_pad", "avg_pool", 2, (2, 2, 7, 8), kernel_size=3, stride=2,
         padding=1, ceil_mode=True),
    pool("avg_pool2d_ceil_exclude_pad", "avg_pool", 2, (2, 2, 6, 7), kernel_size=(3, 2),
         stride=(2, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False),
    pool("avg_pool3d_pad_exclude", "avg_pool", 3, (2, 2, 5, 4, 6), kernel_size=3, stride=2,
         padding=1, count_include_pad=False),
    pool("avg_pool3d_ceil", "avg_pool", 3, (1, 2, 5, 5, 4), kernel_size=(2, 3, 2), stride=2,
         ceil_mode=True),
    pool("adaptive_avg_pool1d", "adaptive_avg_pool", 1, (2, 3, 10), output_size=4),
    pool("adaptive_avg_pool2d", "adaptive_avg_pool", 2, (2, 2, 7, 5), output_size=(3, 4)),
    pool("adaptive_avg_pool3d", "adaptive_avg_pool", 3, (2, 2, 5, 7, 6), output_size=(2, 3, 4)),
    pool("adaptive_avg_pool3d_scalar", "adaptive_avg_pool", 3, (2, 4, 3, 5), output_size=2),
]

CLASSES = {"conv": "Conv", "max_pool": "MaxPool", "avg_pool": "AvgPool",
           "adaptive_avg_pool": "AdaptiveAvgPool"}


def module_for(case):
    kind = case["type"][:-2]
    cls = getattr(nn, CLASSES[kind] + case["type"][-2:])
    return cls(**case["args"])


def seed_of(name):
    return zlib.crc32(name.encode())


def f32(gen, shape):
    """Normal float64 draws rounded once to float32: the exact values both sides compute with."""
    return torch.randn(shape, generator=gen, dtype=F64).float()


def save(path, tensor):
    np.save(path, np.ascontiguousarray(tensor.detach().numpy()), allow_pickle=False)


def spec_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def write_case(case):
    out = GOLDENS / case["name"]
    out.mkdir(parents=True)
    gen = torch.Generator().manual_seed(seed_of(case["name"]))
    module = module_for(case)
    (out / "repr.txt").write_text(repr(module) + "\n")
    params = {k: f32(gen, v.shape) for k, v in module.named_parameters()}
    x = f32(gen, case["shape"])
    module = module.double()
    with torch.no_grad():
        for k, v in module.named_parameters():
            v.copy_(params[k].double())
    x64 = x.double().requires_grad_(True)
    y = module(x64)
    dy = f32(gen, y.shape)
    y.backward(dy.double())
    save(out / "input.npy", x)
    save(out / "grad_output.npy", dy)
    save(out / "output.npy", y)
    save(out / "dx.npy", x64.grad)
    for k, v in module.named_parameters():
        save(out / f"{k}.npy", params[k])
        save(out / f"d{k}.npy", v.grad)
    args = " ".join(f"{k}={spec_value(v)}" for k, v in case["args"].items())
    return f"{case['name']} type={case['type']} {args}"


def main():
    if GOLDENS.exists():
        shutil.rmtree(GOLDENS)
    GOLDENS.mkdir()
    lines = [write_case(c) for c in CASES]
    (GOLDENS / "cases.txt").write_text("\n".join(lines) + "\n")
    total = sum(p.stat().st_size for p in GOLDENS.rglob("*") if p.is_file())
    print(f"{len(lines)} cases, {total} bytes in {GOLDENS}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes PyTorch 1.13 goldens for syncbn's AdamW, gradient clipping and label smoothing.

    /usr/bin/python3 tests/train/generate_optim_goldens.py

Rewrites tests/train/goldens/optim.txt deterministically; read by optim_golden_test.cpp.
One record per line: `<name> <count> <v1> ... <vcount>` (float32 values printed exactly).
Inputs are drawn in float64 and rounded to float32; PyTorch then runs in float32, as syncbn.
"""
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent / "goldens" / "optim.txt"
SHAPES = [(3,), (2, 2), (1,)]
lines = []


def put(name, values):
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    lines.append(f"{name} {flat.size} " + " ".join(repr(float(v)) for v in flat))


def draw(rng, shape, scale=1.0):
    return torch.tensor(rng.normal(0, scale, shape).astype(np.float32))


def adamw_case(name, steps, **options):
    rng = np.random.default_rng(len(name))
    params = [torch.nn.Parameter(draw(rng, s)) for s in SHAPES]
    for i, p in enumerate(params):
        put(f"{name}.init{i}", p.detach())
    opt = torch.optim.AdamW(params, **options)
    for k in range(steps):
        for i, p in enumerate(params):
            p.grad = draw(rng, p.shape, 0.5 + k)
            put(f"{name}.step{k}.grad{i}", p.grad)
        opt.step()
        for i, p in enumerate(params):
            put(f"{name}.step{k}.param{i}", p.detach())
    put(f"{name}.options", [options.get("lr", 1e-3), *options.get("betas", (0.9, 0.999)),
                            options.get("eps", 1e-8), options.get("weight_decay", 0.01)])


def clip_case(name, max_norm, scale):
    rng = np.random.default_rng(100 + len(name))
    params = [torch.nn.Parameter(torch.zeros(s)) for s in SHAPES]
    for i, p in enumerate(params):
        p.grad = draw(rng, p.shape, scale)
        put(f"{name}.grad{i}", p.grad)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2.0)
    put(f"{name}.max_norm", [max_norm])
    put(f"{name}.total_norm", [total.item()])
    for i, p in enumerate(params):
        put(f"{name}.clipped{i}", p.grad)


def smoothing_case(name, eps, n, k):
    rng = np.random.default_rng(200 + n * k)
    logits = draw(rng, (n, k), 2.0).requires_grad_()
    labels = torch.tensor(rng.integers(0, k, n))
    loss = F.cross_entropy(logits, labels, label_smoothing=eps)
    loss.backward()
    put(f"{name}.eps", [eps])
    put(f"{name}.shape", [n, k])
    put(f"{name}.logits", logits.detach())
    put(f"{name}.labels", labels)
    put(f"{name}.loss", [loss.item()])
    put(f"{name}.grad", logits.grad)


def main():
    torch.manual_seed(0)
    adamw_case("adamw_defaults", 4)
    adamw_case("adamw_decay", 5, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    adamw_case("adamw_no_decay", 3, lr=0.01, weight_decay=0.0)
    clip_case("clip_active", 1.0, 2.0)
    clip_case("clip_inactive", 100.0, 0.5)
    smoothing_case("smooth_0p1", 0.1, 4, 5)
    smoothing_case("smooth_0p3", 0.3, 6, 3)
    smoothing_case("smooth_0", 0.0, 3, 4)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes the PyTorch 1.13 golden of gradient accumulation with SyncBatchNorm.

    /usr/bin/python3 tests/mpi/generate_accumulation_goldens.py

One process, plain BatchNorm1d, k = 3 micro-batches of 12 samples (every rank's slices
together): each runs forward and backward of cross_entropy / k, the gradients add up. This is
what W ranks with SyncBatchNorm, DDP and no_sync for the first k - 1 micro-batches compute, each
rank holding 12 / W samples of every micro-batch. Run in float64 on float32-rounded values.
Rewrites tests/mpi/goldens/accumulation.txt (`<name> <count> <values...>` per line), read by
accumulation_mpi_test.cpp.
"""
import collections
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent / "goldens" / "accumulation.txt"
MICRO, SAMPLES, FEATURES, CLASSES = 3, 12, 5, 3


def f32(a):
    return torch.tensor(np.asarray(a, dtype=np.float32).astype(np.float64))


def main():
    rng = np.random.default_rng(13)
    model = torch.nn.Sequential(collections.OrderedDict(
        fc1=torch.nn.Linear(FEATURES, 4), bn1=torch.nn.BatchNorm1d(4), relu1=torch.nn.ReLU(),
        fc2=torch.nn.Linear(4, CLASSES))).double()
    lines = []

    def put(name, values):
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        lines.append(f"{name} {flat.size} " + " ".join(repr(float(v)) for v in flat))

    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.dtype == torch.float64:
                value.copy_(f32(rng.normal(0, 0.7, value.shape)))
                if key == "bn1.bias":  # small, so that ReLU keeps every channel alive
                    value.copy_(f32(rng.uniform(-0.2, 0.2, value.shape)))
                if key.endswith("running_var"):
                    value.copy_(f32(rng.uniform(0.5, 1.5, value.shape)))
                put("init." + key, value)
    model.train()
    total = 0.0
    for j in range(MICRO):
        x = f32(rng.normal(0.5, 1.5, (SAMPLES, FEATURES)))
        y = torch.tensor(rng.integers(0, CLASSES, SAMPLES))
        put(f"micro{j}.x", x)
        put(f"micro{j}.y", y)
        loss = F.cross_entropy(model(x), y) / MICRO
        loss.backward()
        total += loss.item()
    put("loss", [total])
    for name, p in model.named_parameters():
        put("grad." + name, p.grad)
    for key, value in model.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            put("after." + key, value)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch side of syncbn-train's --init-from / --eval-only / --export test: a twin of
tests/train/mlp_init.yaml (Flatten -> Linear(784, 64) -> BatchNorm1d -> ReLU -> Linear(64, 10),
PyTorch's own key names), Fashion-MNIST preprocessed as syncbn does (pixels / 255, then
Normalize(0.2860, 0.3530)).

  pytorch_model.py make OUT DATA_DIR K   trains the twin briefly on the first 512 training
                                         images, writes its state_dict to OUT (safetensors) and
                                         prints its eval on the first K test images
  pytorch_model.py eval IN DATA_DIR K    loads IN strictly (load_state_dict(strict=True)) and
                                         prints its eval on the first K test images

The eval line is "correct C samples K loss L". Exit 77 (skipped) without torch.
"""
import collections
import gzip
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"SKIP: /usr/bin/python3 lacks torch or numpy ({e})")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
import safetensors_interop  # noqa: E402  (its writer: no safetensors package needed)

MEAN, STD = 0.2860, 0.3530
TRAIN_IMAGES, BATCH, STEPS_PER_PASS, PASSES = 512, 64, 8, 3


def twin():
    torch.manual_seed(0)
    return torch.nn.Sequential(collections.OrderedDict(
        flatten=torch.nn.Flatten(), fc1=torch.nn.Linear(784, 64), bn1=torch.nn.BatchNorm1d(64),
        relu1=torch.nn.ReLU(), fc2=torch.nn.Linear(64, 10)))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(shape)


def load(data_dir, split, n):
    images = read_idx(f"{data_dir}/{split}-images-idx3-ubyte.gz")[:n]
    labels = read_idx(f"{data_dir}/{split}-labels-idx1-ubyte.gz")[:n]
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - MEAN) / STD
    return x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def evaluate(model, data_dir, k):
    x, y = load(data_dir, "t10k", k)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits.double(), y).item()
    correct = int((logits.argmax(1) == y).sum())
    print(f"correct {correct} samples {k} loss {loss:.9g}")


def make(out, data_dir, k):
    model = twin()
    x, y = load(data_dir, "train", TRAIN_IMAGES)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(PASSES):
        for i in range(STEPS_PER_PASS):
            optimizer.zero_grad()
            batch = slice(i * BATCH, (i + 1) * BATCH)
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    state = {key: value.detach().numpy() for key, value in model.state_dict().items()}
    safetensors_interop.write(out, state, {"format": "pt"})
    evaluate(model, data_dir, k)


def read_safetensors(path):
    """Any writer's file: u64 header length, JSON header, little-endian data (no checksum check)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    tensors = {}
    for key, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = safetensors_interop.DTYPES[entry["dtype"]]
        tensors[key] = np.frombuffer(body[begin:end], dtype=dtype).reshape(entry["shape"])
    return tensors


def load_strict(path):
    tensors = read_safetensors(path)
    model = twin()
    model.load_state_dict({key: torch.from_numpy(np.array(v)) for key, v in tensors.items()},
                          strict=True)
    return model


def main():
    mode, path, data_dir, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "make":
        make(path, data_dir, k)
    else:
        evaluate(load_strict(path), data_dir, k)


if __name__ == "__main__":
    main()

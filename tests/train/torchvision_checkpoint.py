"""Loads a syncbn-train checkpoint of configs/zoo/resnet18.yaml (Fashion-MNIST: 1 channel, 10
classes) strictly into torchvision's resnet18 with a 1-channel conv1, evaluates it on the first
N test images and prints "accuracy A loss L" for the shell test to compare with syncbn-train's
report. The checkpoint is read with a small safetensors reader (the format is a little-endian
u64 header length, a JSON header, then raw little-endian tensors), so no safetensors package is
needed.

Usage: torchvision_checkpoint.py CHECKPOINT DATA_DIR N
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
MEAN, STD = 0.2860, 0.3530  # torchvision Normalize for Fashion-MNIST, as the data set uses


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    body = data[8 + header_len :]
    tensors = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=DTYPES[entry["dtype"]])
        tensors[key] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return tensors


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8).reshape(shape)


def main():
    checkpoint, data_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    state = {k: v for k, v in load_safetensors(checkpoint).items() if not k.startswith("optimizer.")}
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    model.load_state_dict(state, strict=True)
    model.eval()
    images = read_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz")[:n]
    labels = torch.from_numpy(read_idx(f"{data_dir}/t10k-labels-idx1-ubyte.gz")[:n].astype(np.int64))
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - MEAN) / STD
    with torch.no_grad():
        logits = model(x.unsqueeze(1))
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).double().mean().item()
    print(f"accuracy {accuracy:.6f} loss {loss:.6f}")


if __name__ == "__main__":
    main()

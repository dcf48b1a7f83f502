"""Writes a small, easy data set in one of syncbn's file formats, with NumPy and PIL only (not
syncbn's writers): class k's samples have brightness 40 + 50 k plus noise, so a tiny model
learns them within a few epochs.
Usage: make_file_datasets.py FORMAT DIR   (FORMAT: npy | cifar10 | cifar100 | image_folder)"""
import os
import sys

import numpy as np
from PIL import Image

CLASSES = 4
rng = np.random.default_rng(0)


def images(n, shape):
    labels = rng.integers(0, CLASSES, n)
    noise = rng.integers(-10, 11, (n,) + shape)
    pixels = (40 + 50 * labels).reshape((n,) + (1,) * len(shape)) + noise
    return pixels.astype(np.uint8), labels


def write_npy(root):
    for split, n in (("train", 256), ("test", 64)):
        x, y = images(n, (1, 8, 8))
        # float32 training samples and uint8 test samples: the same values either way.
        samples = x.astype(np.float32) / 255 if split == "train" else x
        np.save(os.path.join(root, split + "_samples.npy"), samples)
        np.save(os.path.join(root, split + "_labels.npy"), y.astype(np.int64))


def cifar_bytes(n, fine):
    x, y = images(n, (3, 32, 32))
    labels = [y.reshape(n, 1).astype(np.uint8)]
    if fine:  # coarse label first, then the fine one syncbn uses
        labels.insert(0, rng.integers(0, 20, (n, 1)).astype(np.uint8))
    return np.concatenate(labels + [x.reshape(n, -1)], axis=1).tobytes()


def write_cifar(root, fine):
    files = [("train.bin", 200), ("test.bin", 64)] if fine else \
        [("data_batch_%d.bin" % i, 40) for i in range(1, 6)] + [("test_batch.bin", 64)]
    for name, n in files:
        with open(os.path.join(root, name), "wb") as f:
            f.write(cifar_bytes(n, fine))


def write_image_folder(root):
    for split, n in (("train", 160), ("test", 48)):
        for i in range(n):
            k = i % CLASSES
            h, w = (12, 10) if i % 3 else (10, 14)
            grey = i % 5 == 0
            shape = (h, w) if grey else (h, w, 3)
            v = np.clip(40 + 50 * k + rng.integers(-10, 11, shape), 0, 255).astype(np.uint8)
            folder = os.path.join(root, split, "class_%d" % k)
            os.makedirs(folder, exist_ok=True)
            ext = ".jpg" if i % 2 else ".png"
            Image.fromarray(v, "L" if grey else "RGB").save(os.path.join(folder, "%03d%s" % (i, ext)))


def main():
    fmt, root = sys.argv[1], sys.argv[2]
    os.makedirs(root, exist_ok=True)
    if fmt == "npy":
        write_npy(root)
    elif fmt in ("cifar10", "cifar100"):
        write_cifar(root, fmt == "cifar100")
    elif fmt == "image_folder":
        write_image_folder(root)
    else:
        sys.exit("unknown format " + fmt)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch peer of bench/train_bench.cpp: training throughput of the config's model at 1 thread.

Run with Debian's interpreter (/usr/bin/python3 has python3-torch 1.13 and python3-yaml):
  bench/peer_train.py configs/fashion_resnet.yaml [--batch-size N] [--warmup S] [--steps S]
                      [--reps R] [--threads T] [--data fashion_mnist|random]
Prints one JSON object: {"torch", "threads", "batch_size", "parameters", "steps",
"images_per_second" (median over repetitions), "reps_images_per_second", "data",
"cpu_ms_per_step" (this thread's CPU time per timed step: with one thread PyTorch computes on
the calling thread, and time spent descheduled by other processes is not counted)}.

The network is the one src/builders/model.cpp builds, with torchvision's BasicBlock:
  conv1 3x3 s1 p1 no bias -> norm -> relu -> stages of BasicBlocks (conv3x3 s -> norm -> relu ->
  conv3x3 -> norm, + shortcut; downsample = conv1x1 s no bias -> norm when the shape changes)
  -> relu -> AdaptiveAvgPool2d(1) -> flatten -> [dropout] -> fc
with kaiming_normal_(fan_out, relu) conv weights. norm batch/sync_batch is BatchNorm2d (a world of
one runs SyncBatchNorm as plain BatchNorm), batch_no_running_stats drops running stats, group:G
is GroupNorm, none is Identity. Loss CrossEntropyLoss, optimiser SGD(lr, momentum, nesterov,
weight_decay) as the config says.

One step = the same work as one syncbn-train step: gather the batch from the shuffled in-memory
data set, zero_grad, forward, loss (.item(), as ours reads the loss), backward, SGD step. Data:
Fashion-MNIST from the Debian IDX .gz files, normalised with mean 0.2860 std 0.3530 (as ours), held
as one float tensor; a batch is an index_select (about 0.1% of a step). --data random uses a
fixed random tensor of the same shape instead.
"""
import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
import yaml

MODEL_DEFAULTS = {"input": [1, 28, 28], "num_classes": 10, "norm": "sync_batch",
                  "stem_channels": 32, "dropout": 0.0, "bn_momentum": 0.1, "bn_eps": 1e-5,
                  "stages": [{"channels": 32, "blocks": 1, "stride": 1},
                             {"channels": 64, "blocks": 1, "stride": 2},
                             {"channels": 128, "blocks": 1, "stride": 2}]}
OPTIM_DEFAULTS = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}


def norm_factory(m):
    kind = m["norm"]
    if kind == "none":
        return lambda c: torch.nn.Identity()
    if kind.startswith("group:"):
        return lambda c: torch.nn.GroupNorm(int(kind[6:]), c)
    momentum = None if m["bn_momentum"] < 0 else m["bn_momentum"]
    track = kind != "batch_no_running_stats"
    return lambda c: torch.nn.BatchNorm2d(c, eps=m["bn_eps"], momentum=momentum,
                                          track_running_stats=track)


class BasicBlock(torch.nn.Module):
    def __init__(self, inplanes, planes, stride, norm):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.relu = torch.nn.ReLU(inplace=True)
        self.conv2 = torch.nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(inplanes, planes, 1, stride, bias=False), norm(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def build_model(m):
    norm = norm_factory(m)
    layers = [("conv1", torch.nn.Conv2d(m["input"][0], m["stem_channels"], 3, 1, 1, bias=False)),
              ("bn1", norm(m["stem_channels"])), ("relu", torch.nn.ReLU(inplace=True))]
    inplanes = m["stem_channels"]
    for i, s in enumerate(m["stages"]):
        blocks = []
        for b in range(s.get("blocks", 1)):
            blocks.append(BasicBlock(inplanes, s["channels"], s.get("stride", 1) if b == 0 else 1,
                                     norm))
            inplanes = s["channels"]
        layers.append(("layer%d" % (i + 1), torch.nn.Sequential(*blocks)))
    layers += [("avgpool", torch.nn.AdaptiveAvgPool2d(1)), ("flatten", torch.nn.Flatten())]
    if m["dropout"] > 0:
        layers.append(("dropout", torch.nn.Dropout(m["dropout"])))
    layers.append(("fc", torch.nn.Linear(inplanes, m["num_classes"])))
    net = torch.nn.Sequential(__import__("collections").OrderedDict(layers))
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    return net


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_data(kind, directory, shape):
    if kind == "random":
        gen = torch.Generator().manual_seed(0)
        return torch.randn([4096] + shape, generator=gen), torch.randint(0, 10, (4096,))
    images = read_idx(os.path.join(directory, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"))
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - 0.2860) / 0.3530
    return x.reshape([-1] + shape).contiguous(), torch.from_numpy(labels.astype(np.int64))


def make_step(args, cfg):
    m = dict(MODEL_DEFAULTS, **cfg.get("model", {}))
    o = dict(OPTIM_DEFAULTS, **cfg.get("optimizer", {}))
    batch = args.batch_size or cfg.get("train", {}).get("batch_size", 64)
    torch.manual_seed(cfg.get("train", {}).get("seed", 0))
    net = build_model(m).train()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=o["lr"], momentum=o["momentum"],
                          nesterov=bool(o["nesterov"]) and o["momentum"] > 0,
                          weight_decay=o["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss()
    directory = cfg.get("data", {}).get("dir", "/usr/share/datasets/fashion-mnist")
    x_all, y_all = load_data(args.data, directory, list(m["input"]))
    x_all = x_all.contiguous(memory_format=fmt)
    order = torch.randperm(len(x_all))
    cursor = [0]

    def step():
        if cursor[0] + batch > len(order):
            cursor[0] = 0
        idx = order[cursor[0]:cursor[0] + batch]
        cursor[0] += batch
        x, y = x_all.index_select(0, idx), y_all.index_select(0, idx)
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, batch, sum(p.numel() for p in net.parameters())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("--batch-size", type=int, default=0, help="0 = train.batch_size")
    p.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    p.add_argument("--steps", type=int, default=100, help="timed steps per repetition")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", choices=["fashion_mnist", "random"], default="fashion_mnist")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC tensors (not what ours does; for reference only)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        cfg = yaml.safe_load(f)
    step, batch, params = make_step(args, cfg)
    for _ in range(args.warmup):
        step()
    rates = []
    cpu_start = time.thread_time()
    for _ in range(args.reps):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        rates.append(args.steps * batch / (time.perf_counter() - start))
    cpu_ms = 1e3 * (time.thread_time() - cpu_start) / (args.reps * args.steps)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "batch_size": batch, "parameters": params, "steps": args.steps,
                      "data": args.data, "channels_last": args.channels_last,
                      "cpu_ms_per_step": cpu_ms,
                      "images_per_second": statistics.median(rates),
                      "reps_images_per_second": rates}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch peer of bench/train_bench.cpp: training throughput of the config's model at 1 thread.

Run with Debian's interpreter (/usr/bin/python3 has python3-torch 1.13 and python3-yaml):
  bench/peer_train.py configs/fashion_resnet.yaml [--batch-size N] [--warmup S] [--steps S]
                      [--reps R] [--threads T] [--data fashion_mnist|random]
                      [--torchvision NAME --input C,H,W --num-classes K] [--world-size W]
Prints one JSON object: {"torch", "threads", "batch_size" (per rank), "world_size", "parameters",
"steps", "images_per_second" (median over repetitions, all ranks' images), "reps_images_per_second",
"ms_per_step" (median), "reps_ms_per_step", "faults_per_step" (minor page faults of the process
per timed step, getrusage), "data", "allocator" (the LD_PRELOADed malloc, or glibc),
"cpu_ms_per_step" (this thread's CPU time per timed step: with one thread PyTorch computes on
the calling thread, and time spent descheduled by other processes is not counted)}.

--torchvision NAME builds torchvision.models.NAME(num_classes=K) instead of the config's
template network (the config then gives only the optimiser, seed and, unless --input and
--num-classes say otherwise, model.input and model.num_classes). --world-size W > 1 spawns W
processes that train with DistributedDataParallel over gloo on this host, each on its slice of
every global batch; BatchNorm stays plain BatchNorm2d (PyTorch 1.13's SyncBatchNorm runs only
on GPUs), so each rank normalises with its own statistics and skips the collective ours makes.

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
import resource
import socket
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


def load_data(kind, directory, shape, classes):
    if kind == "random":
        gen = torch.Generator().manual_seed(0)
        return (torch.randn([4096] + shape, generator=gen),
                torch.randint(0, classes, (4096,), generator=gen))
    images = read_idx(os.path.join(directory, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"))
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - 0.2860) / 0.3530
    return x.reshape([-1] + shape).contiguous(), torch.from_numpy(labels.astype(np.int64))


def model_shape(args, m):
    """(input shape, classes): --input and --num-classes over the config's model section."""
    shape = [int(d) for d in args.input.split(",")] if args.input else list(m["input"])
    return shape, args.num_classes or m["num_classes"]


def make_net(args, m, shape, classes):
    if not args.torchvision:
        return build_model(dict(m, input=shape, num_classes=classes))
    import torchvision
    return getattr(torchvision.models, args.torchvision)(num_classes=classes)


def make_step(args, cfg, rank=0, world=1):
    m = dict(MODEL_DEFAULTS, **cfg.get("model", {}))
    o = dict(OPTIM_DEFAULTS, **cfg.get("optimizer", {}))
    batch = args.batch_size or cfg.get("train", {}).get("batch_size", 64)
    torch.manual_seed(cfg.get("train", {}).get("seed", 0))
    shape, classes = model_shape(args, m)
    net = make_net(args, m, shape, classes).train()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    params = sum(p.numel() for p in net.parameters())
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(net.parameters(), lr=o["lr"], momentum=o["momentum"],
                          nesterov=bool(o["nesterov"]) and o["momentum"] > 0,
                          weight_decay=o["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss()
    directory = cfg.get("data", {}).get("dir", "/usr/share/datasets/fashion-mnist")
    x_all, y_all = load_data(args.data, directory, shape, classes)
    x_all = x_all.contiguous(memory_format=fmt)
    order = torch.randperm(len(x_all))
    cursor = [0]

    def step():
        if cursor[0] + batch * world > len(order):
            cursor[0] = 0
        first = cursor[0] + rank * batch
        idx = order[first:first + batch]
        cursor[0] += batch * world
        x, y = x_all.index_select(0, idx), y_all.index_select(0, idx)
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, batch, params


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def allocator():
    preload = os.environ.get("LD_PRELOAD", "")
    return os.path.basename(preload) if preload else "glibc"


def measure(args, step):
    """Seconds per repetition, this thread's CPU seconds and the process's minor faults."""
    for _ in range(args.warmup):
        step()
    seconds = []
    faults, cpu = minor_faults(), time.thread_time()
    for _ in range(args.reps):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        seconds.append(time.perf_counter() - start)
    return seconds, time.thread_time() - cpu, minor_faults() - faults


def report(args, batch, world, params, seconds, cpu, faults):
    timed = args.reps * args.steps
    rates = [args.steps * batch * world / s for s in seconds]
    ms = [1e3 * s / args.steps for s in seconds]
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "batch_size": batch, "world_size": world, "parameters": params,
            "steps": args.steps, "data": args.data, "channels_last": args.channels_last,
            "allocator": allocator(), "cpu_ms_per_step": 1e3 * cpu / timed,
            "faults_per_step": faults / timed, "ms_per_step": statistics.median(ms),
            "reps_ms_per_step": ms, "images_per_second": statistics.median(rates),
            "reps_images_per_second": rates}


def run(rank, world, args, cfg, port, results):
    """One rank's benchmark; rank 0's report lands in results (a queue) or is printed."""
    torch.set_num_threads(args.threads)
    if world > 1:
        torch.distributed.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port,
                                             rank=rank, world_size=world)
    step, batch, params = make_step(args, cfg, rank, world)
    seconds, cpu, faults = measure(args, step)
    out = report(args, batch, world, params, seconds, cpu, faults)
    if world > 1:
        torch.distributed.destroy_process_group()
    if rank == 0:
        results.put(out) if results is not None else print(json.dumps(out))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("--batch-size", type=int, default=0, help="0 = train.batch_size")
    p.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    p.add_argument("--steps", type=int, default=100, help="timed steps per repetition")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", choices=["fashion_mnist", "random"], default="fashion_mnist")
    p.add_argument("--torchvision", default="", help="a torchvision.models name, e.g. resnet18")
    p.add_argument("--input", default="", help="C,H,W of one sample (default model.input)")
    p.add_argument("--num-classes", type=int, default=0, help="0 = model.num_classes")
    p.add_argument("--world-size", type=int, default=1, help="DDP ranks (gloo) on this host")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC tensors (not what ours does; for reference only)")
    args = p.parse_args()
    with open(args.config) as f:
        cfg = yaml.safe_load(f)
    if args.world_size == 1:
        return run(0, 1, args, cfg, 0, None)
    ctx = torch.multiprocessing.get_context("spawn")
    results = ctx.SimpleQueue()
    torch.multiprocessing.spawn(run, args=(args.world_size, args, cfg, free_port(), results),
                                nprocs=args.world_size)
    print(json.dumps(results.get()))


if __name__ == "__main__":
    main()

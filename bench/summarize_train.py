#!/usr/bin/python3
"""Table of bench/run_train_resnet18.sh's JSON files: one row per program and allocator.

  bench/summarize_train.py OUT_DIR ROUNDS WORLD TUNED_NAME
OUT_DIR holds {ours,glibc,tuned}_np1_R.json and, for WORLD > 1, {ours,plain,tuned}_npW_R.json
(plain: ours without SyncBatchNorm, as PyTorch's DDP runs on CPU) for
rounds R = 1..ROUNDS, each one JSON object from bench/train_bench.cpp or bench/peer_train.py.
Times are medians over every repetition of every round, the fastest repetition beside them;
faults and CPU ms per step are medians over the rounds. "vs ours" is their ms per step over
ours (wall time, then the computing thread's CPU time, which load from other processes inflates
much less), so above 1.0x ours is faster.
"""
import json
import os
import platform
import statistics
import sys


def load(out, name, rounds):
    return [json.load(open(os.path.join(out, "%s_%d.json" % (name, r))))
            for r in range(1, rounds + 1)]


def machine():
    model = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return "%s, %d cores, Linux %s" % (model, os.cpu_count(), platform.release())


def cpu_ms(runs):
    return statistics.median(d["cpu_ms_per_step"] for d in runs)


def row(label, runs, ours):
    ms = [v for d in runs for v in d["reps_ms_per_step"]]
    rates = [v for d in runs for v in d["reps_images_per_second"]]
    med = statistics.median(ms)
    ratios = ("%.2fx | %.2fx" % (med / median_ms(ours), cpu_ms(runs) / cpu_ms(ours))
              if ours else " | ")
    return "| %s | %.1f (%.1f) | %.0f | %.0f | %.1f | %s |" % (
        label, med, min(ms), statistics.median(rates),
        statistics.median(d["faults_per_step"] for d in runs), cpu_ms(runs), ratios)


def median_ms(runs):
    return statistics.median(v for d in runs for v in d["reps_ms_per_step"])


def main():
    out, rounds, world, tuned = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    ours, glibc, fast = (load(out, n + "_np1", rounds) for n in ("ours", "glibc", "tuned"))
    if ours[0]["parameters"] != fast[0]["parameters"]:
        sys.exit("models differ: %d parameters here, %d in PyTorch"
                 % (ours[0]["parameters"], fast[0]["parameters"]))
    load_at = lambda name: open(os.path.join(out, name)).read().strip()
    print("machine: %s; load average (1/5/15 min) %s at start, %s at end"
          % (machine(), load_at("load_start"), load_at("load_end")))
    print("model: %d parameters on both sides; batch %d per rank; 1 thread per rank; torch %s; "
          "%d rounds x %d reps x %d steps"
          % (ours[0]["parameters"], ours[0]["batch_size"], fast[0]["torch"], rounds,
             len(ours[0]["reps_ms_per_step"]), ours[0]["steps"]))
    print()
    print("| program | ms/step median (fastest) | images/s | minor faults/step | CPU ms/step "
          "| vs ours (wall) | vs ours (CPU) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    ours_ms = median_ms(ours)
    print(row("syncbn, np=1", ours, None))
    print(row("PyTorch, glibc malloc, np=1", glibc, ours))
    print(row("PyTorch, %s, np=1" % tuned, fast, ours))
    if world > 1:
        ours_w, plain_w, fast_w = (load(out, "%s_np%d" % (n, world), rounds)
                                   for n in ("ours", "plain", "tuned"))
        print(row("syncbn, np=%d, SyncBatchNorm + DDP" % world, ours_w, None))
        print(row("syncbn, np=%d, BatchNorm + DDP" % world, plain_w, None))
        print(row("PyTorch, %s, np=%d, BatchNorm + DDP (gloo)" % (tuned, world), fast_w,
                  plain_w))
    print()
    print("ours / tuned PyTorch, np=1 (throughput ratio): %.2fx wall, %.2fx CPU; per round %s"
          % (median_ms(fast) / ours_ms, cpu_ms(fast) / cpu_ms(ours),
             " ".join("%.2f" % (statistics.median(f["reps_ms_per_step"])
                                / statistics.median(o["reps_ms_per_step"]))
                      for o, f in zip(ours, fast))))


if __name__ == "__main__":
    main()

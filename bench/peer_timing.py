"""Timing for the PyTorch peer scripts, as Google Benchmark times ours: warm up for `warmup`
seconds, size a repetition to at least `min_time` seconds, time `reps` repetitions and report
the median per-iteration wall time in ms (and every repetition's)."""
import statistics
import time


def time_iterations(step, iters):
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return time.perf_counter() - start


def measure(step, warmup, min_time, reps):
    deadline = time.perf_counter() + warmup
    while True:  # at least one warm-up iteration, which also sizes the repetitions
        elapsed = time_iterations(step, 1)
        iters = max(1, int(min_time / max(elapsed, 1e-9)) + 1)
        if time.perf_counter() >= deadline:
            break
    samples = [time_iterations(step, iters) / iters * 1e3 for _ in range(reps)]
    return statistics.median(samples), samples

#!/usr/bin/env bash
# BatchNorm2d at one thread: syncbn (Google Benchmark, JSON) and PyTorch 1.13 (Debian
# python3-torch) in one invocation, beside the memory-traffic bound measured in the same run.
#   bench/run_batchnorm.sh [build-dir]     default build dir: build-bench (configured if absent)
# Env: PYTHON (default /usr/bin/python3, the interpreter with torch), KEEP=dir keeps the JSON.
# Prints per row: shape, mode, ours ms, PyTorch ms, bound ms, ours/bound, PyTorch/ours (medians
# of 9 repetitions), the same ratios for the fastest repetitions, and page faults per iteration;
# then the functional kernels alone against the same bounds. Takes about a minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-bench}
python=${PYTHON:-/usr/bin/python3}

if [[ ! -f $build/build.ninja && ! -f $build/Makefile ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target syncbn_bench_batchnorm >/dev/null

out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

bench=$build/bench/syncbn_bench_batchnorm
# The bandwidth is probed again before and after the rows and the bound uses the best of the
# three probes: one probe can land on a busy moment of the machine.
probe() { "$bench" --bandwidth-only >"$out/$1.json" || true; }
echo "syncbn: $bench" >&2
probe probe_before
"$bench" --benchmark_format=json --benchmark_report_aggregates_only=true >"$out/ours.json"
probe probe_after
echo "PyTorch: $python bench/peer_batchnorm.py" >&2
if ! "$python" "$root/bench/peer_batchnorm.py" >"$out/peer.json"; then
  echo "PyTorch peer failed (is python3-torch installed? scripts/setup --peer)" >&2
  echo '{"rows": []}' >"$out/peer.json"
fi

"$python" - "$out/ours.json" "$out/peer.json" "$out"/probe_*.json <<'PY'
import json, sys

ours = json.load(open(sys.argv[1]))
peer = {r["name"]: r for r in json.load(open(sys.argv[2]))["rows"]}
contexts = [ours["context"]]
for path in sys.argv[3:]:
    try:
        contexts.append(json.load(open(path))["context"])
    except (OSError, ValueError, KeyError):
        pass
keys = ["stream_copy_GBps", "stream_scale_GBps", "stream_triad_GBps", "stream_copy_nt_GBps"]
best = {k: max(float(c[k]) for c in contexts if k in c) for k in keys}
bw = max(best.values()) * 1e9
stream_bw = max(best[k] for k in keys[:3]) * 1e9
print("memory bandwidth (1 thread; best of %d probes of STREAM copy/scale/triad and a "
      "non-temporal copy): %.1f GB/s (copy %.1f, scale %.1f, triad %.1f, NT copy %.1f); "
      "load average at start %s" % ((len(contexts), bw * 1e-9) + tuple(best[k] for k in keys) + (
          ", ".join("%.2f" % v for v in ours["context"].get("load_avg", [])),)))
print("bound = compulsory traffic / bandwidth: train fwd 3x, fwd+bwd 8x, eval fwd 2x the tensor;")
print("'STREAM bound' uses the best regular-store STREAM rate instead (no non-temporal copy);")
print("ms = median of 9 repetitions; 'min' ratios use the fastest repetition of each side")
aggs = {}
for b in ours["benchmarks"]:
    name = b["run_name"].split("/min_time")[0]
    aggs.setdefault(name, {})[b.get("aggregate_name", "")] = b
fmt = "%-13s %-17s %8s %10s %8s %10s %12s %14s %16s %17s %9s"
print(fmt % ("shape", "mode", "ours ms", "PyTorch ms", "bound ms", "ours/bound", "PyTorch/ours",
             "min ours/bound", "min PyTorch/ours", "ours/STREAM bound", "faults/it"))
for name, a in aggs.items():
    if not name.startswith("BatchNorm2d/"):
        continue
    med, low = a["median"], a["min"]
    _, mode, shape = name.split("/")
    ms, bound = med["real_time"], med["traffic_bytes"] / bw * 1e3  # the benchmarks report ms
    t = peer.get(name)
    print(fmt % (shape, mode, "%.3f" % ms, "%.3f" % t["ms"] if t else "n/a", "%.3f" % bound,
                 "%.2f" % (ms / bound), "%.2f" % (t["ms"] / ms) if t else "n/a",
                 "%.2f" % (low["real_time"] / bound),
                 "%.2f" % (min(t["reps_ms"]) / low["real_time"]) if t else "n/a",
                 "%.2f" % (ms / (med["traffic_bytes"] / stream_bw * 1e3)),
                 "%.0f" % med["faults"]))
print()
print("The kernels alone (functional API as the module chains it, without the module's bookkeeping")
print("around them):")
fmt = "%-13s %-17s %10s %8s %10s %14s %17s"
print(fmt % ("shape", "mode", "kernels ms", "bound ms", "ms/bound", "min ms/bound",
             "ms/STREAM bound"))
for name, a in aggs.items():
    if name.startswith("Kernels/"):
        med, low = a["median"], a["min"]
        _, mode, shape = name.split("/")
        bound = med["traffic_bytes"] / bw * 1e3
        print(fmt % (shape, mode, "%.3f" % med["real_time"], "%.3f" % bound,
                     "%.2f" % (med["real_time"] / bound), "%.2f" % (low["real_time"] / bound),
                     "%.2f" % (med["real_time"] / (med["traffic_bytes"] / stream_bw * 1e3))))
PY

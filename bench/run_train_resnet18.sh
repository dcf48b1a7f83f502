#!/usr/bin/env bash
# ResNet-18 training steps, syncbn vs PyTorch 1.13 + torchvision 0.14 (Debian), same model, same
# input, same batch per rank, one thread per rank, side by side in one invocation:
#   bench/run_train_resnet18.sh [--config FILE] [--torchvision NAME] [--input C,H,W]
#                               [--num-classes K] [--batch B] [--np W]
#     defaults: configs/zoo/resnet18.yaml, resnet18, 3,32,32, 10, 32, 2.
# Ours builds the config's model (builders::build_model, model.input and model.num_classes
# overridden as given); PyTorch builds torchvision.models.NAME(num_classes=K). The script stops
# when the two parameter counts differ.
# Env: PYTHON (/usr/bin/python3), ROUNDS (2), REPS (5), STEPS (20 timed steps per repetition),
#      WARMUP (5 steps), BUILD (build-bench; configured and built if absent), NO_BUILD=1 (use
#      BUILD's binaries as they are), TUNED_MALLOC (libtcmalloc.so.4), KEEP=dir keeps the JSON.
#
# Each round runs, back to back so that load from other processes hits all alike:
#   ours at np=1; PyTorch with glibc's malloc; PyTorch with TUNED_MALLOC preloaded (PyTorch's
#   performance tuning guide, CPU section: preload jemalloc or TCMalloc; TCMalloc is the faster
#   of the two here, jemalloc's page purging costs PyTorch more faults than glibc);
#   then, for W > 1, ours under mpirun -np W (SyncBatchNorm + DistributedDataParallel), ours
#   with plain BatchNorm (norm_conversion none) and PyTorch DDP over gloo with TUNED_MALLOC
#   (plain BatchNorm: 1.13's SyncBatchNorm runs only on GPUs).
# A step is: gather the batch, zero_grad, forward, CrossEntropyLoss, backward, SGD step (the
# config's optimiser; the zoo configs take the defaults, lr 0.1, momentum 0.9, nesterov,
# weight decay 5e-4, on both sides). Synthetic data held in memory on both sides.
# The table: median ms per step over all repetitions of all rounds (fastest repetition beside
# it), images/s, minor page faults per step (getrusage, whole process), CPU ms per step of the
# computing thread, and speed relative to ours (their ms / our ms: > 1 means ours is faster).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=$root/configs/zoo/resnet18.yaml torchvision=resnet18 input=3,32,32 classes=10 batch=32
world=2
while (($#)); do
  case $1 in
    --config) config=$2 ;;
    --torchvision) torchvision=$2 ;;
    --input) input=$2 ;;
    --num-classes) classes=$2 ;;
    --batch) batch=$2 ;;
    --np) world=$2 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2 && exit 2 ;;
  esac
  shift 2
done
python=${PYTHON:-/usr/bin/python3}
build=${BUILD:-$root/build-bench}
rounds=${ROUNDS:-2} reps=${REPS:-5} steps=${STEPS:-20} warmup=${WARMUP:-5}
tuned=/usr/lib/x86_64-linux-gnu/${TUNED_MALLOC:-libtcmalloc.so.4}
[[ -f $tuned ]] || { echo "$tuned missing: scripts/setup --peer installs it" >&2 && exit 1; }

if [[ -z ${NO_BUILD:-} ]]; then
  [[ -f $build/build.ninja ]] ||
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target syncbn_bench_train >/dev/null
fi
out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$out"' EXIT
((EUID == 0)) && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

timing=(--warmup "$warmup" --steps "$steps" --reps "$reps" --threads 1 --data random
  --batch-size "$batch" --input "$input" --num-classes "$classes")
ours() { "$build/bench/syncbn_bench_train" --config "$config" "${timing[@]}"; }
peer() { "$python" "$root/bench/peer_train.py" "$config" --torchvision "$torchvision" \
  "${timing[@]}" "$@"; }

cut -d' ' -f1-3 /proc/loadavg >"$out/load_start"
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  ours >"$out/ours_np1_$r.json"
  peer >"$out/glibc_np1_$r.json"
  LD_PRELOAD=$tuned peer >"$out/tuned_np1_$r.json"
  if ((world > 1)); then
    mpirun -np "$world" --oversubscribe --bind-to none "$build/bench/syncbn_bench_train" \
      --config "$config" "${timing[@]}" >"$out/ours_np${world}_$r.json"
    mpirun -np "$world" --oversubscribe --bind-to none "$build/bench/syncbn_bench_train" \
      --config "$config" "${timing[@]}" --set model.norm_conversion=none \
      >"$out/plain_np${world}_$r.json"
    LD_PRELOAD=$tuned peer --world-size "$world" >"$out/tuned_np${world}_$r.json"
  fi
done
cut -d' ' -f1-3 /proc/loadavg >"$out/load_end"

"$python" "$root/bench/summarize_train.py" "$out" "$rounds" "$world" "$(basename "$tuned")"

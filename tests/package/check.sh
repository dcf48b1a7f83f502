#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then configures, builds and runs two consumers:
#   consumer              BatchNorm only: its ldd must show none of MPI, CUDA, NCCL, oneDNN, BLAS
#   environment_consumer  dist::Environment: on a build without NCCL, no CUDA or NCCL in ldd, and
#                         it runs with the CUDA toolkit hidden (a private mount namespace, as root)
# Usage: check.sh BUILD_DIR
set -euo pipefail
build_dir=$1; here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cmake --install "$build_dir" --prefix "$scratch/prefix" > /dev/null
! grep -rn "/usr/lib\|/usr/local/cuda" "$scratch"/prefix/lib/cmake/syncbn/syncbnTargets*.cmake ||
  fail "the installed targets name absolute library paths"
cmake -S "$here" -B "$scratch/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$scratch/prefix" > /dev/null
cmake --build "$scratch/consumer" > /dev/null
consumer=$scratch/consumer/consumer env_consumer=$scratch/consumer/environment_consumer

"$consumer"
ldd "$consumer" | sed 's/^/  consumer: /'
! ldd "$consumer" | grep -Ei "libmpi|libcuda|libcudart|libnccl|libdnnl|blas" ||
  fail "a BatchNorm-only program links a backend or BLAS library"

nccl_built=$(grep -E '^SYNCBN_NCCL_BUILT:' "$build_dir/CMakeCache.txt" | cut -d= -f2)
ldd "$env_consumer" | sed 's/^/  environment_consumer: /'
if [[ $nccl_built == TRUE ]]; then
  echo "environment_consumer: this build has NCCL; the CPU-only run check needs a build without"
  "$env_consumer"
  exit 0
fi
! ldd "$env_consumer" | grep -Ei "libcuda|libcudart|libnccl" ||
  fail "a CPU-only build's Environment program needs CUDA or NCCL"
if ((EUID == 0)) && [[ -d /usr/local/cuda ]] && command -v unshare > /dev/null; then
  # Hide the toolkit: the program must not even look for it.
  unshare --mount --propagation private bash -c \
    "mount -t tmpfs none /usr/local/cuda && ls /usr/local/cuda | wc -l | grep -qx 0 && '$env_consumer'"
  echo "environment_consumer ran with /usr/local/cuda hidden"
else
  "$env_consumer"
fi

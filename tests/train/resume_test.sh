#!/usr/bin/env bash
# Checkpoint and resume edge cases, end to end through syncbn-train:
#   missing        --resume with an empty checkpoint dir says so loudly and starts from scratch.
#   required       --resume=required with an empty checkpoint dir fails naming the dir.
#   metrics_full   a metrics file that cannot be written (/dev/full) fails naming it.
#   world_size     a mid-epoch checkpoint of 1 rank is refused under mpirun -np 2, saying why.
# Usage: resume_test.sh SYNCBN_TRAIN_BINARY CONFIG CASE
set -euo pipefail
train=$(realpath "$1") config=$(realpath "$2") case=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*" >&2; [[ -f out.txt ]] && cat out.txt >&2; exit 1; }
# Runs syncbn-train with the output in out.txt; sets status.
run() { status=0; "$@" > out.txt 2>&1 || status=$?; }
train1() { run "$train" --config "$config" --checkpoint-dir "$work/ckpt" --progress lines "$@"; }

case $case in
  missing)
    train1 --resume --max-steps 2
    [[ $status -eq 0 ]] || fail "exited $status"
    grep -q -- "--resume: no checkpoint in $work/ckpt; starting from scratch" out.txt ||
      fail "no message saying that --resume found nothing"
    echo "ok: --resume without a checkpoint says so" ;;
  required)
    train1 --resume=required --max-steps 2
    [[ $status -ne 0 ]] || fail "--resume=required without a checkpoint exited 0"
    grep -q "no checkpoint in $work/ckpt" out.txt || fail "the message does not name the dir"
    [[ ! -e $work/ckpt/last.safetensors ]] || fail "it trained anyway"
    echo "ok: --resume=required without a checkpoint fails" ;;
  metrics_full)
    train1 --max-steps 20 --set train.metrics=/dev/full
    [[ $status -ne 0 ]] || fail "metrics written to /dev/full, yet exit 0"
    grep -q "/dev/full" out.txt || fail "the error does not name the metrics file"
    echo "ok: a metrics write error fails the run" ;;
  world_size)
    train1 --max-steps 3
    [[ $status -eq 0 ]] || fail "first run exited $status"
    run mpirun -np 2 --oversubscribe "$train" --config "$config" --checkpoint-dir "$work/ckpt" \
      --progress lines --resume
    [[ $status -ne 0 ]] || fail "a 1-rank mid-epoch checkpoint resumed on 2 ranks"
    grep -q "world size: checkpoint 1, this run 2" out.txt || fail "the error does not say why"
    echo "ok: another world size is refused mid-epoch" ;;
  *) echo "unknown case '$case'" >&2; exit 2 ;;
esac

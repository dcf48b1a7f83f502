#!/usr/bin/env bash
# An error on ONE rank ends the whole job within seconds, with that rank's message, under real
# mpirun: without it the other ranks wait in a collective until the watchdog (here 120 s).
#   full_disk     rank 0 cannot write its checkpoint: the file system is full (200 KiB tmpfs)
#   readonly_dir  the checkpoint directory is on a read-only file system
#   metrics       train.metrics names a file in a read-only directory (only rank 0 writes it)
#   nonfinite     rank 0 refuses to write a checkpoint holding Inf (lr 3e38)
# Usage: rank_error_test.sh SYNCBN_TRAIN_BINARY CASE NP CONFIG (configs/tiny.yaml)
# Needs root for the mounts, made in a private mount namespace (unshare) so nothing outlives the
# test; exit 77 (skipped) otherwise.
set -euo pipefail
train=$(realpath "$1") case=$2 np=$3 config=$(realpath "$4")
if [[ ${SYNCBN_IN_NAMESPACE:-} != 1 ]]; then
  ((EUID == 0)) || { echo "skipped: needs root (tmpfs mounts)"; exit 77; }
  command -v unshare >/dev/null || { echo "skipped: no unshare"; exit 77; }
  SYNCBN_IN_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$@"
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export SYNCBN_COLLECTIVE_TIMEOUT=120
work=$(mktemp -d); trap 'pkill -KILL -f "$work" 2>/dev/null || true; umount "$work"/mnt 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
mkdir mnt
fail() { echo "FAIL: $*" >&2; exit 1; }

ck=$work/ck
args=(--config "$config" --epochs 4)
case $case in
  full_disk)
    mount -t tmpfs -o size=200k tmpfs mnt
    head -c 120000 /dev/zero > mnt/filler
    ck=$work/mnt/ck; want="No space left|cannot write|failed" ;;
  readonly_dir)
    mount -t tmpfs -o ro,size=1m tmpfs mnt
    ck=$work/mnt/ck; want="Read-only file system|read-only|cannot" ;;
  metrics)
    mount -t tmpfs -o ro,size=1m tmpfs mnt
    args+=(--set train.metrics="$work/mnt/metrics.jsonl") ; want="metrics" ;;
  nonfinite)
    args+=(--set optimizer.lr=3e38 --set train.checkpoint_every=1) ; want="NaN or Inf" ;;
  *) echo "unknown case '$case'" >&2; exit 2 ;;
esac
args+=(--checkpoint-dir "$ck")

start=$SECONDS
set +e
timeout 100 mpirun -np "$np" --oversubscribe "$train" "${args[@]}" > out.txt 2>&1 &
run=$!
# The time from the failing rank's message to the end of the whole job.
until grep -q "rank 0: error" out.txt || ! kill -0 "$run" 2>/dev/null; do sleep 0.1; done
seen=$SECONDS
wait "$run"; status=$?
set -e
end=$SECONDS
tail -n 20 out.txt
((status != 0)) || fail "the job exited 0"
((status != 124)) || fail "the job hung until timeout(1) killed it"
grep -Eq "syncbn-train: rank 0: error: .*($want)" out.txt || fail "no message from rank 0 matching '$want'"
(($(grep -c "syncbn-train: rank 0: error" out.txt) == 1)) || fail "rank 0's message printed more than once"
! grep -q "watchdog\|waited .* in" out.txt || fail "the job ended by the watchdog, not by the error"
((end - seen <= 10)) || fail "the job took $((end - seen)) s after rank 0's error to end (bound 10 s)"
echo "ok: $case at np=$np: rank 0's error ended the job in $((end - seen)) s (exit $status, $((end - start)) s in all)"

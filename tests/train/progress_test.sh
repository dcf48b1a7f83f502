#!/usr/bin/env bash
# Progress lines of syncbn-train under mpirun -np 2, stdout to a file (what a batch job sees):
#   every      --log-every 2: rank 0 alone prints a line every 2 optimizer steps, with the step
#              (of the run and of the epoch), the loss, images/s and ETAs for epoch and run; the
#              losses of an epoch's lines (each a mean over 2 steps) average to its train_loss.
#   seconds    no --log-every, train.log_seconds tiny: the time-based default prints a line
#              every step (no assertion on wall-clock time itself).
#   terminal   on a terminal (script(1)), a bar by default, but lines with --log-every.
#   config     the keys round-trip through --print-config (to_yaml, stored in checkpoints), and
#              out-of-range values are refused before training, naming the option and key.
# Usage: progress_test.sh SYNCBN_TRAIN_BINARY CONFIG CASE   (CONFIG: tiny.yaml, 8 steps/epoch at np 2)
set -euo pipefail
train=$(realpath "$1") config=$(realpath "$2") case=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; [[ ! -f out.txt ]] || cat out.txt >&2; exit 1; }
run2() {
  mpirun -np 2 --oversubscribe "$train" --config "$config" --checkpoint-dir "$work/ckpt" \
    --epochs 2 --progress auto "$@" > out.txt 2>&1 || fail "syncbn-train exited $?"
}
line_re='^step ([0-9]+)/16  epoch ([12]) ([0-9]+)/8  loss ([0-9.]+)  ([0-9]+) img/s  eta epoch ([0-9]+:[0-9]{2}) run ([0-9]+:[0-9]{2})$'
# Prints the global step of every progress line; fails on a line that starts like one but
# does not have every field.
steps_of() {
  grep '^step ' out.txt | while IFS= read -r line; do
    [[ $line =~ $line_re ]] || fail "malformed progress line: '$line'"
    echo "${BASH_REMATCH[1]}"
  done
}

case $case in
  every)
    run2 --log-every 2
    steps=$(steps_of | tr '\n' ' ')
    [[ $steps == "2 4 6 8 10 12 14 16 " ]] || fail "progress lines at steps '$steps', want 2 4 .. 16 once each (rank 0 only)"
    grep -qE '^step 16/16  epoch 2 8/8  .* eta epoch 0:00 run 0:00$' out.txt || fail "no zero ETA at the last step"
    grep -qE '^step 2/16  epoch 1 2/8  loss [0-9.]+  [1-9][0-9]* img/s' out.txt || fail "no images/s on the first line"
    # Epoch 1's train_loss, printed to 4 decimals, is the mean of its 4 lines' losses.
    awk '/^step [0-9]+\/16  epoch 1 / { sum += $7; n++ }
         /^epoch 1  train_loss/ { want = $4 }
         END { d = sum / n - want; if (n != 4 || d > 2e-4 || d < -2e-4) exit 1 }' out.txt ||
      fail "epoch 1's progress losses do not average to its train_loss"
    python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' ckpt/metrics.jsonl ||
      fail "metrics.jsonl is not JSON lines"
    plot=$(dirname "$config")/../scripts/plot-metrics
    if command -v gnuplot > /dev/null; then
      "$plot" ckpt > /dev/null && [[ $(head -c 4 ckpt/metrics.png | od -An -c | tr -d ' ') == 211PNG ]] ||
        fail "scripts/plot-metrics on the run's metrics.jsonl"
    fi
    echo "ok: a progress line every 2 steps, from rank 0 only, with every field" ;;
  seconds)
    run2 --set train.log_seconds=0.000001
    steps=$(steps_of | tr '\n' ' ')
    [[ $steps == "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 " ]] || fail "progress lines at steps '$steps', want every step"
    echo "ok: the time-based default prints when its interval has passed" ;;
  terminal)
    command -v script > /dev/null || { echo "skip: no script(1)"; exit 77; }
    tty_run() { script -qec "$(printf '%q ' "$train" -c "$config" --checkpoint-dir "$work/ckpt" "$@")" /dev/null > out.txt 2>&1 || fail "exited $?"; }
    tty_run --max-steps 8
    grep -q 'epoch 1 \[#' out.txt && ! grep -q '^step ' out.txt || fail "no bar (or lines) on a terminal"
    tty_run --max-steps 8 --log-every 4
    # The ETA depends on the build's speed (a sanitizer build is slower): any well-formed one.
    [[ $(grep -cE $'^step [48]/8  epoch 1 [48]/16  loss .* run [0-9]+:[0-9]{2}\r$' out.txt) -eq 2 ]] &&
      ! grep -q 'epoch 1 \[#' out.txt || fail "--log-every on a terminal: want lines at steps 4 and 8, no bar"
    echo "ok: a bar on a terminal, lines there with --log-every" ;;
  config)
    "$train" -c "$config" --log-every 3 --set train.log_seconds=0.25 --print-config > a.yaml
    "$train" -c a.yaml --print-config > b.yaml
    grep -q '^  log_every: 3$' b.yaml && grep -q '^  log_seconds: 0.25$' b.yaml && cmp -s a.yaml b.yaml ||
      fail "train.log_every/log_seconds do not round-trip: $(diff a.yaml b.yaml)"
    status=0; "$train" -c "$config" --log-every -1 > out.txt 2>&1 || status=$?
    [[ $status -eq 2 ]] && grep -q -- "--log-every -1: train.log_every: expected a value >= 0" out.txt ||
      fail "--log-every -1: status $status"
    status=0; "$train" -c "$config" --set train.log_seconds=0 > out.txt 2>&1 || status=$?
    [[ $status -eq 2 ]] && grep -q "train.log_seconds: expected a positive number, got '0'" out.txt ||
      fail "train.log_seconds=0: status $status"
    echo "ok: the progress keys round-trip and are range-checked" ;;
  *) echo "unknown case '$case'" >&2; exit 2 ;;
esac

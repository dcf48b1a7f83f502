#!/usr/bin/env bash
# scripts/plot-metrics: a metrics.jsonl in syncbn-train's format becomes a PNG (magic bytes,
# a non-trivial size); a missing dir or file, an empty file and a malformed line are refused
# with a message naming what is wrong (the line number for a bad line).
# Usage: plot_metrics_test.sh SOURCE_DIR        (exit 77 = skipped: no gnuplot)
set -uo pipefail
plot=$1/scripts/plot-metrics failures=0
command -v gnuplot > /dev/null || { echo "skip: gnuplot not installed"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
record() {  # record EPOCH TRAIN_LOSS TEST_LOSS TEST_ACC LR
  printf '{"epoch": %s, "global_step": %s0, "train_loss": %s, "test_loss": %s, "test_accuracy": %s, "lr": %s, "images_per_second": 812.5, "seconds": 3.2}\n' \
    "$1" "$1" "$2" "$3" "$4" "$5"
}
expect() {  # expect NAME STATUS REGEX -- ARGS...
  local name=$1 want=$2 regex=$3; shift 4
  local out status
  out=$("$plot" "$@" 2>&1); status=$?
  if [[ $status -eq $want && $out =~ $regex ]]; then echo "ok   - $name"
  else echo "FAIL - $name: status $status, output: $out" >&2; failures=$((failures + 1)); fi
}
mkdir -p "$work/good" "$work/empty" "$work/bad" "$work/none"
{ record 1 2.2 1.9 0.41 0.1; record 2 1.4 1.3 0.58 0.05; record 3 0.9 1.0 0.67 0.01; } > "$work/good/metrics.jsonl"
expect "plots three epochs" 0 "wrote $work/out.png" -- "$work/good" "$work/out.png"
magic=$(head -c 8 "$work/out.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
size=$(stat -c %s "$work/out.png" 2>/dev/null || echo 0)
if [[ $magic == 89504e470d0a1a0a && $size -gt 10000 ]]; then echo "ok   - valid PNG ($size bytes)"
else echo "FAIL - not a PNG: magic '$magic', $size bytes" >&2; failures=$((failures + 1)); fi
# A diverged epoch: syncbn-train writes non-finite values as null; drawn as a gap.
{ record 1 2.2 1.9 0.41 0.1; record 2 null null 0.1 0.05; } > "$work/empty/metrics.jsonl"
expect "null values" 0 "wrote $work/null.png" -- "$work/empty" "$work/null.png"
expect "default output in the run dir" 0 "wrote $work/good/metrics.png" -- "$work/good"
[[ -s $work/good/metrics.png ]] || { echo "FAIL - no $work/good/metrics.png" >&2; failures=$((failures + 1)); }

: > "$work/empty/metrics.jsonl"
{ record 1 2.2 1.9 0.41 0.1; echo '{"epoch": 2, "train_loss": 1.4,'; } > "$work/bad/metrics.jsonl"
expect "missing dir" 1 "run directory '$work/nope' does not exist" -- "$work/nope"
expect "missing file" 1 "no metrics file '$work/none/metrics.jsonl'" -- "$work/none"
expect "empty file" 1 "metrics.jsonl' is empty" -- "$work/empty"
expect "malformed line" 1 "metrics.jsonl:2: not valid JSON" -- "$work/bad"
record 1 2.2 1.9 0.41 0.1 | sed 's/"lr": [^,]*, //' > "$work/bad/metrics.jsonl"
expect "missing key" 1 "metrics.jsonl:1: missing lr" -- "$work/bad"
expect "usage" 2 "usage: plot-metrics RUN_DIR" --
[[ $failures -eq 0 ]] || { echo "$failures failure(s)" >&2; exit 1; }

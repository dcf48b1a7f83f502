#!/bin/sh
# Usage: check_ranks.sh NP COMMAND...
# Runs COMMAND (NP ranks of examples/train_loop) and passes when it exits 0 and ranks 0..NP-1
# each printed "rank R: parameter checksum X" with one and the same X: data-parallel training
# must leave every replica identical.
np=$1
shift
out=$(mktemp) && trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
status=$?
cat "$out"
if [ $status -ne 0 ]; then
  echo "FAIL: the example exited with status $status" >&2
  exit 1
fi
grep -q '^step 1: loss ' "$out" || { echo "FAIL: no training step was reported" >&2; exit 1; }
lines=$(grep -c '^rank [0-9]*: parameter checksum ' "$out")
ranks=$(sed -n 's/^rank \([0-9]*\): parameter checksum .*/\1/p' "$out" | sort -n | uniq | tr '\n' ' ')
expected=$(seq 0 $((np - 1)) | tr '\n' ' ')
if [ "$lines" -ne "$np" ] || [ "$ranks" != "$expected" ]; then
  echo "FAIL: expected one checksum line from each of ranks $expected; got $lines lines from ranks $ranks" >&2
  exit 1
fi
distinct=$(sed -n 's/^rank [0-9]*: parameter checksum //p' "$out" | sort -u | wc -l)
if [ "$distinct" -ne 1 ]; then
  echo "FAIL: the ranks' parameters differ ($distinct distinct checksums above); expected one" >&2
  exit 1
fi
echo "ok: $np rank(s), identical parameters"

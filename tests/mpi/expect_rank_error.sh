#!/usr/bin/env bash
# Usage: expect_rank_error.sh MODE COMMAND...   (MODE: run | unwind)
# Passes only if the job failed within 20 s (the collective timeout is 120 s, so a pass means the
# failing rank ended the job itself), no rank got past the collective, and, for `run`, the
# failing rank's own message was printed once.
set -u
mode=$1
shift
start=$(date +%s)
output=$(SYNCBN_COLLECTIVE_TIMEOUT=120 timeout 60 "$@" "$mode" 2>&1)
status=$?
elapsed=$(($(date +%s) - start))
printf '%s\n' "$output"
echo "--- exit status $status after ${elapsed}s"
fail() { echo "FAIL: $*"; exit 1; }
((status != 0)) || fail "the job exited 0"
((status != 124)) || fail "the job hung until timeout(1)"
((elapsed <= 20)) || fail "took ${elapsed}s to end after one rank failed"
grep -q "allreduce returned" <<<"$output" && fail "a rank got through the collective"
grep -q "watchdog" <<<"$output" && fail "the watchdog ended the job, not the failing rank"
if [[ $mode == run ]]; then
  (($(grep -Ec "rank_error: rank [0-9]+: error: disk full, on purpose" <<<"$output") == 1)) ||
    fail "the failing rank's message is not printed exactly once"
else
  grep -Eq "syncbn: rank [0-9]+: an exception is unwinding past the Environment" <<<"$output" ||
    fail "no message from the Environment's destructor"
fi
echo PASS

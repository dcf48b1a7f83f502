#!/usr/bin/env bash
# Faults under mpirun -np 2, end to end through syncbn-train:
#   preempt      SIGTERM to one rank: every rank stops at a step boundary, checkpoints, exits 0;
#                resuming finishes with exactly the bytes an uninterrupted run writes.
#   second       a second SIGTERM, more than 3 s after the first, exits at once (non-zero).
#   all_ranks    SIGTERM to every rank at once (what SLURM does) is one stop request: exit 0,
#                no "second signal".
#   launcher_term, launcher_int
#                SIGTERM / SIGINT to launcher/launch.sh: every rank stops, checkpoints, exit 0.
#   sigpipe      one process with stdout closed early (| head -1) still trains to the end.
#   rank_death   SIGKILL of one rank: the job ends non-zero within 30 s naming the rank, the
#                newest checkpoint stays loadable and --resume from it works; no survivor claims
#                to be writing a checkpoint.
# Usage: faults_test.sh SYNCBN_TRAIN_BINARY CASE
set -euo pipefail
train=$(realpath "$1") case=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$(mktemp -d); [[ -n ${KEEP:-} ]] && trap - EXIT; trap 'pkill -KILL -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/long.yaml" <<'YAML'
model: {input: [1, 8, 8], num_classes: 4, stem_channels: 8,
        stages: [{channels: 8, blocks: 1, stride: 1}, {channels: 16, blocks: 1, stride: 2}]}
data: {dataset: synthetic, synthetic_train_size: 16384, synthetic_test_size: 64}
train: {batch_size: 16, epochs: 2, seed: 11, checkpoint_every: 25, checkpoint_dir: ckpt}
YAML

fail() { echo "FAIL: $*" >&2; exit 1; }
mpirun_np2() { mpirun -np 2 --oversubscribe "$train" --config "$work/long.yaml" "$@"; }

# Starts a run in directory $1 in the background; sets run_pid.
start_run() {
  mkdir -p "$1" && cd "$1"
  mpirun_np2 > out.txt 2>&1 &
  run_pid=$!
  cd "$work"
}

# Waits (<= 60 s) for the first checkpoint in directory $1.
wait_for_checkpoint() {
  for _ in $(seq 600); do [[ -f $1/ckpt/last.safetensors ]] && return 0; sleep 0.1; done
  fail "no checkpoint appeared in $1 within 60 s"
}

# Anchored: mpirun's own command line contains the same words after "mpirun -np 2".
rank_pids() { pgrep -f -- "^$train --config $work/long.yaml" | sort -n; }

# Waits for run_pid; sets status and elapsed seconds.
wait_run() {
  local start=$SECONDS
  status=0; wait "$run_pid" || status=$?
  elapsed=$((SECONDS - start))
}

case $case in
  preempt)
    (mkdir -p "$work/whole" && cd "$work/whole" && mpirun_np2 > out.txt 2>&1) || fail "uninterrupted run failed"
    start_run "$work/split"
    wait_for_checkpoint "$work/split"
    kill -TERM "$(rank_pids | head -1)"
    wait_run
    [[ $status -eq 0 ]] || { cat "$work/split/out.txt"; fail "preempted run exited $status, expected 0"; }
    grep -q "stopped on request" "$work/split/out.txt" || fail "no 'stopped on request' message"
    (cd "$work/split" && mpirun_np2 --resume > resume.txt 2>&1) || { cat "$work/split/resume.txt"; fail "resume failed"; }
    grep -q "resumed from" "$work/split/resume.txt" || fail "resume did not load the checkpoint"
    cmp "$work/whole/ckpt/last.safetensors" "$work/split/ckpt/last.safetensors" || fail "resumed run ended with different parameters"
    echo "ok: preempted at a step boundary, resumed to identical final parameters" ;;
  second)
    start_run "$work/twice"
    wait_for_checkpoint "$work/twice"
    # Freeze rank 1 so rank 0, after the first signal, waits in the step's allreduce; the
    # second signal must then end it at once. (Two signals sent back to back may coalesce.)
    mapfile -t pids < <(rank_pids)
    kill -STOP "${pids[1]}"
    kill -TERM "${pids[0]}"
    sleep 3.5  # within 3 s a signal counts as the same request (see all_ranks)
    kill -TERM "${pids[0]}"
    wait_run
    [[ $status -ne 0 ]] || fail "two signals should exit at once with a failure status"
    grep -q "second stop signal" "$work/twice/out.txt" || fail "no 'second stop signal' message"
    echo "ok: second signal exits at once (status $status, ${elapsed}s)" ;;
  rank_death)
    start_run "$work/dead"
    wait_for_checkpoint "$work/dead"
    kill -KILL "$(rank_pids | tail -1)"
    wait_run
    cat "$work/dead/out.txt" | tail -5
    [[ $status -ne 0 ]] || fail "job with a killed rank exited 0"
    ((elapsed <= 30)) || fail "job took ${elapsed}s to end after a rank died (bound 30 s)"
    grep -Eq "rank [0-9]+" "$work/dead/out.txt" || fail "no message naming the rank"
    ! grep -Eq "stop requested|writing a checkpoint|checkpoint written" "$work/dead/out.txt" ||
      fail "a survivor announced a checkpoint that is never written"
    (cd "$work/dead" && mpirun_np2 --resume --max-steps 30 > resume.txt 2>&1) || { cat "$work/dead/resume.txt"; fail "resume after a rank death failed"; }
    echo "ok: job ended ${elapsed}s after the rank died (status $status); resume from the checkpoint works" ;;
  all_ranks)
    start_run "$work/all"
    wait_for_checkpoint "$work/all"
    mapfile -t pids < <(rank_pids)
    kill -TERM "${pids[@]}"; kill -TERM "${pids[@]}"  # and once more, as srun forwards it again
    wait_run
    [[ $status -eq 0 ]] || { cat "$work/all/out.txt"; fail "signalling every rank exited $status, expected 0"; }
    ! grep -q "second" "$work/all/out.txt" || fail "one signal per rank was taken as a second signal"
    grep -q "stopped on request" "$work/all/out.txt" || fail "no 'stopped on request' message"
    echo "ok: a signal to every rank at once is one stop request" ;;
  launcher_term | launcher_int)
    sig=${case#launcher_}; sig=${sig^^}
    mkdir -p "$work/launch" && cd "$work/launch"
    # Job control on: a background job of a script otherwise starts with SIGINT ignored, which
    # no program can trap (a terminal's Ctrl-C reaches a foreground launch.sh unignored).
    set -m
    SYNCBN_TRAIN=$train "$(dirname "$0")/../../launcher/launch.sh" -n 2 "$work/long.yaml" > out.txt 2>&1 &
    run_pid=$!
    set +m
    cd "$work"
    wait_for_checkpoint "$work/launch"
    kill -"$sig" "$run_pid"
    wait_run
    [[ $status -eq 0 ]] || { cat "$work/launch/out.txt"; fail "SIG$sig to launch.sh: exit $status, expected 0"; }
    grep -q "stopped on request" "$work/launch/out.txt" || fail "no 'stopped on request' message"
    grep -q "checkpoint written" "$work/launch/out.txt" || fail "no checkpoint written on the stop"
    echo "ok: SIG$sig to launch.sh stopped every rank with a checkpoint, exit 0 (${elapsed}s)" ;;
  sigpipe)
    mkdir -p "$work/pipe" && cd "$work/pipe"
    set +o pipefail
    "$train" --config "$work/long.yaml" --max-steps 40 | head -1 > out.txt
    status=${PIPESTATUS[0]}
    [[ $status -eq 0 ]] || fail "training with a closed stdout exited $status, expected 0"
    [[ -f ckpt/last.safetensors ]] || fail "no checkpoint: training stopped when stdout closed"
    echo "ok: a closed stdout does not stop training" ;;
  *) echo "unknown case '$case'" >&2; exit 2 ;;
esac

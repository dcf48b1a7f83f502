#!/usr/bin/env bash
# Runs syncbn-train on N ranks with whatever launcher this machine has: srun inside a SLURM job,
# else OpenMPI's mpirun, else one process directly. Run with --help for usage.
#
# Every argument travels in bash arrays from our command line to the launcher's: nothing is
# eval'd or word-split, so config paths with spaces, quotes, `;` or `$(...)` reach the binary
# byte for byte and never run as shell code.
set -euo pipefail

# Installed as bin/syncbn-launch next to bin/syncbn-train; in the source tree as launcher/launch.sh.
prog=$(basename "$0")
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly prog script_dir

# SYNCBN_TRAIN, else the installed sibling, else the binary of the default build tree.
default_train() {
  if [[ -n ${SYNCBN_TRAIN:-} ]]; then echo "$SYNCBN_TRAIN"
  elif [[ -x $script_dir/syncbn-train ]]; then echo "$script_dir/syncbn-train"
  else echo "$script_dir/../build/launcher/syncbn-train"; fi
}

usage() {
  cat <<EOF
Usage: $prog [OPTIONS] CONFIG [ARGS...]

Run syncbn-train --config CONFIG [ARGS...] on N ranks. The launcher is chosen automatically:
  srun --mpi=pmix -n N      inside a SLURM job (SLURM_JOB_ID is set) or with --slurm
  mpirun -np N              otherwise, when mpirun is installed; adds --oversubscribe when
                            N > nproc ($(nproc 2>/dev/null || echo ?) here) and --allow-run-as-root when run as root
  syncbn-train directly     when N is 1, or when no mpirun is installed (the single-process
                            fallback; a warning is printed if N > 1)
ARGS after CONFIG are passed to syncbn-train unchanged, options included.

Options:
  -n, --nprocs N        number of ranks (default: SLURM_NTASKS inside a SLURM job, else 1)
      --hostfile FILE   mpirun hostfile (ignored with a warning under srun: the allocation
                        decides placement)
      --mpi-args "ARGS" extra arguments for srun/mpirun, placed before the program; split on
                        whitespace only (no quotes, globs or expansions are interpreted)
      --mpi-arg ARG     one extra srun/mpirun argument, taken verbatim (repeatable; use it for
                        values containing spaces)
      --slurm           use srun even if SLURM_JOB_ID is not set
      --mpirun          use mpirun even inside a SLURM job
      --direct          run a single process directly (requires N = 1)
      --dry-run         print the command that would run, shell-quoted on one line, and exit 0
  -h, --help            show this help
      --                end of options; the next argument is CONFIG even if it starts with '-'

Environment:
  SYNCBN_TRAIN          training binary (default: syncbn-train next to this script if
                        installed, else $script_dir/../build/launcher/syncbn-train)
  SYNCBN_SRUN_MPI       srun --mpi plugin (default: pmix; Debian's OpenMPI needs pmix, not pmi2)
  SYNCBN_MPIRUN         mpirun to use (default: mpirun from PATH)

Examples:
  $prog -n 1 configs/tiny.yaml                     # one process, no MPI launcher
  $prog -n 4 configs/tiny.yaml --epochs 1          # mpirun -np 4 (--oversubscribe if < 4 cores)
  $prog -n 8 --hostfile hosts configs/resnet.yaml  # mpirun across the hosts in 'hosts'
  $prog -n 2 --mpi-args "--bind-to none" configs/tiny.yaml
  sbatch -n 4 --wrap "$prog -n 4 configs/tiny.yaml"  # srun --mpi=pmix -n 4 inside the job
  salloc -n 2 $prog -n 2 configs/tiny.yaml
  $prog --dry-run -n 4 configs/tiny.yaml           # show the mpirun command, run nothing

Signals: SIGTERM, SIGINT (Ctrl-C) or SIGHUP to this script is one stop request for the whole job:
every rank finishes its step, the job writes its checkpoint and exits 0 (resume with --resume).
A second signal more than 3 s later ends the ranks at once, without a checkpoint.

Exit status: that of the training run; 2 for usage errors (bad -n, unknown option, missing
config or binary).
EOF
}

die_usage() {
  echo "$prog: error: $*" >&2
  echo "$prog: try '$prog --help'" >&2
  exit 2
}
warn() { echo "$prog: warning: $*" >&2; }

# Parsed options (globals, set by parse_args).
nprocs=""
nprocs_given=0
hostfile=""
dry_run=0
mode=auto
mpi_extra=()
cmd=()
config=""
train_args=()

# Options end at the first non-option word: that is CONFIG, and everything after it belongs to
# syncbn-train (so `--epochs 1` after CONFIG is never mistaken for one of ours).
parse_args() {
  local words
  while (($#)); do
    case $1 in
      -h | --help) usage; exit 0 ;;
      -n | --nprocs) (($# >= 2)) || die_usage "$1 needs a value"; nprocs=$2; nprocs_given=1; shift 2 ;;
      -n*) nprocs=${1#-n}; nprocs_given=1; shift ;;
      --nprocs=*) nprocs=${1#*=}; nprocs_given=1; shift ;;
      --hostfile) (($# >= 2)) || die_usage "$1 needs a value"; hostfile=$2; shift 2 ;;
      --hostfile=*) hostfile=${1#*=}; shift ;;
      --mpi-args | --mpi-args=*)
        if [[ $1 == *=* ]]; then words=${1#*=}; shift
        else (($# >= 2)) || die_usage "$1 needs a value"; words=$2; shift 2; fi
        # read -a splits on whitespace and nothing else: no globbing, no $(...), no quotes.
        local -a split=()
        read -r -a split <<<"$words" || true
        mpi_extra+=("${split[@]}") ;;
      --mpi-arg) (($# >= 2)) || die_usage "$1 needs a value"; mpi_extra+=("$2"); shift 2 ;;
      --mpi-arg=*) mpi_extra+=("${1#*=}"); shift ;;
      --slurm) mode=srun; shift ;;
      --mpirun) mode=mpirun; shift ;;
      --direct) mode=direct; shift ;;
      --dry-run) dry_run=1; shift ;;
      --) shift; break ;;
      -*) die_usage "unknown option '$1'" ;;
      *) break ;;
    esac
  done
  (($#)) || die_usage "missing CONFIG"
  config=$1
  shift
  train_args=("$@")
}

validate() {
  if ((!nprocs_given)); then
    if [[ -n ${SLURM_JOB_ID:-} && -n ${SLURM_NTASKS:-} ]]; then nprocs=$SLURM_NTASKS; else nprocs=1; fi
  fi
  if ! [[ $nprocs =~ ^[0-9]{1,6}$ ]] || ((10#$nprocs < 1)); then
    die_usage "-n wants a positive integer, got '$nprocs'"
  fi
  nprocs=$((10#$nprocs))
  [[ -f $config && -r $config ]] || die_usage "config file not found or unreadable: '$config'"
  [[ -z $hostfile || (-f $hostfile && -r $hostfile) ]] ||
    die_usage "hostfile not found or unreadable: '$hostfile'"
  if [[ $mode == direct ]] && ((nprocs > 1)); then
    die_usage "--direct runs one process, but -n is $nprocs"
  fi
}

# Which launcher to use: explicit flag, then SLURM, then N=1, then mpirun if installed.
choose_mode() {
  [[ $mode == auto ]] || return 0
  if [[ -n ${SLURM_JOB_ID:-} ]] && ((nprocs > 1)); then mode=srun
  elif ((nprocs == 1)); then mode=direct
  elif command -v "${SYNCBN_MPIRUN:-mpirun}" >/dev/null 2>&1; then mode=mpirun
  else
    warn "no mpirun found and not inside a SLURM job: running 1 process instead of $nprocs"
    mode=direct
  fi
}

is_open_mpi() { "$1" --version 2>/dev/null | grep -q "Open MPI"; }

# Appends the launcher (if any) to the global array `cmd`.
build_launcher() {
  case $mode in
    srun)
      [[ -z $hostfile ]] || warn "--hostfile is ignored under srun (the SLURM allocation decides placement)"
      cmd+=(srun "--mpi=${SYNCBN_SRUN_MPI:-pmix}" -n "$nprocs" "${mpi_extra[@]}") ;;
    mpirun)
      local mpirun=${SYNCBN_MPIRUN:-mpirun}
      cmd+=("$mpirun" -np "$nprocs")
      # These flags are OpenMPI's; another MPI's mpirun would reject them.
      if is_open_mpi "$mpirun"; then
        # Harmless with a hostfile too: it permits oversubscription, it does not force it.
        ((nprocs <= $(nproc))) || cmd+=(--oversubscribe)
        [[ $(id -u) -ne 0 ]] || cmd+=(--allow-run-as-root)
      fi
      [[ -z $hostfile ]] || cmd+=(--hostfile "$hostfile")
      cmd+=("${mpi_extra[@]}") ;;
    direct)
      ((${#mpi_extra[@]} == 0)) || warn "--mpi-args ignored: no MPI launcher in single-process mode"
      [[ -z $hostfile ]] || warn "--hostfile ignored: no MPI launcher in single-process mode" ;;
  esac
}

# Prints argv shell-quoted on one line: pasting it into bash runs exactly this command.
print_command() {
  local out
  printf -v out '%q ' "$@"
  printf '%s\n' "${out% }"
}

main() {
  parse_args "$@"
  validate
  choose_mode
  local train
  train=$(default_train)
  build_launcher
  cmd+=("$train" --config "$config" "${train_args[@]}")
  if ((dry_run)); then
    [[ -x $train ]] || warn "training binary not found: $train (build it, or set SYNCBN_TRAIN)"
    print_command "${cmd[@]}"
    exit 0
  fi
  [[ -x $train ]] || die_usage "training binary not found or not executable: $train
  (build it with: cmake --build build --target syncbn-train, or set SYNCBN_TRAIN=/path/to/binary)"
  if [[ $mode != direct ]] && ! command -v "${cmd[0]}" >/dev/null 2>&1; then
    die_usage "${cmd[0]} not found (wanted for the $mode launch)"
  fi
  run_forwarding_stops
}

# Runs cmd and turns SIGTERM/SIGINT/SIGHUP to this script into one stop request for every rank:
# each rank finishes its step, the job checkpoints and exits 0. mpirun would instead kill the
# ranks about a second after a SIGTERM or SIGINT and exit 1 whatever they did; it forwards
# SIGUSR1 untouched, and syncbn-train takes SIGUSR1 as a stop request (so does srun). The job runs
# in its own session, so a Ctrl-C on the terminal reaches only this script.
run_forwarding_stops() {
  local child status=0 stop_signal=USR1
  [[ $mode == direct ]] && stop_signal=TERM
  setsid "${cmd[@]}" &
  child=$!
  # shellcheck disable=SC2064  # expand child and stop_signal now
  trap "kill -$stop_signal $child 2>/dev/null || true" TERM INT HUP
  wait "$child" || status=$?
  # A trapped signal interrupts wait; keep waiting until the job itself has ended.
  while kill -0 "$child" 2>/dev/null; do status=0; wait "$child" || status=$?; done
  exit "$status"
}

main "$@"

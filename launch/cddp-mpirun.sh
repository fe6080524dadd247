#!/usr/bin/env bash
# Launch cddp with one rank per GPU (or per CPU socket/core group) via mpirun.
#
#   launch/cddp-mpirun.sh -n 4 [-H hostfile] [-- mpirun options] train --model vit ...
#
# -n N         ranks in total (default: GPUs on this host, else 2)
# -H FILE      Open MPI hostfile (see launch/hostfile.example); default: this host
# -t T         CPU threads per rank (passed as --threads T unless given)
# Everything after the options is the cddp command line. Ranks are bound to
# cores in blocks so that the OpenMP/OpenBLAS threads of a rank stay local;
# each rank picks its GPU from its local rank (DESIGN §4). Environment:
# CDDP (path of the binary, default: cddp on PATH or ./build/cddp),
# CDDP_STOP_GRACE (seconds mpirun waits after its own SIGTERM before SIGKILL;
# default 120). SIGTERM, SIGINT or SIGUSR1 to this script stop the run at the
# next step with a checkpoint (exit 75); see docs/train.md "Pre-emption".
set -euo pipefail
np="" hostfile="" threads=""
extra=()
while getopts "n:H:t:h" opt; do
  case $opt in
    n) np=$OPTARG ;;
    H) hostfile=$OPTARG ;;
    t) threads=$OPTARG ;;
    h) sed -n '2,14p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ "${1:-}" = "--" ]; then
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do extra+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
fi
[ $# -ge 1 ] || { echo "usage: $0 -n N [-H hostfile] [-t threads] COMMAND [cddp options]" >&2; exit 2; }

bin=${CDDP:-$(command -v cddp || true)}
[ -n "$bin" ] || bin=./build/cddp
[ -x "$bin" ] || { echo "$0: cddp binary not found (set CDDP=/path/to/cddp)" >&2; exit 2; }

if [ -z "$np" ]; then
  gpus=$(nvidia-smi -L 2>/dev/null | wc -l || echo 0)
  np=$(( gpus > 0 ? gpus : 2 ))
fi
cores=$(nproc)
per_rank=$(( cores / np > 0 ? cores / np : 1 ))
args=("$@")
if [ -z "$threads" ]; then threads=$per_rank; fi
case " ${args[*]} " in *" --threads "*|*" --threads="*) ;; *) args+=(--threads "$threads") ;; esac

mpi=(mpirun -np "$np" --map-by "slot:PE=$per_rank" --bind-to core
     -x OMP_NUM_THREADS="$threads" -x OPENBLAS_NUM_THREADS="$threads" -x OMP_PROC_BIND=close)
[ -n "$hostfile" ] && mpi+=(--hostfile "$hostfile")
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# more ranks than cores (a laptop test): let Open MPI oversubscribe
if [ -z "$hostfile" ] && [ "$np" -gt "$cores" ]; then mpi=(mpirun -np "$np" --oversubscribe); fi
# Pre-emption (docs/train.md): mpirun answers SIGTERM/SIGINT by killing the job
# (SIGTERM to every rank, SIGKILL a second later), but forwards SIGUSR1 as is.
# So a stop request to this script reaches the ranks as SIGUSR1: they agree on
# a step, write a checkpoint and exit 75, which becomes this script's status.
# mpirun runs in its own session, so that a terminal's Ctrl-C reaches only this
# script; its SIGKILL grace is raised for schedulers that signal it directly.
mpi+=(--mca odls_base_sigkill_timeout "${CDDP_STOP_GRACE:-120}")
setsid "${mpi[@]}" "${extra[@]}" "$bin" "${args[@]}" &
pid=$!
trap 'kill -USR1 "$pid" 2>/dev/null || true' TERM INT USR1
while :; do
  rc=0
  wait "$pid" || rc=$?
  kill -0 "$pid" 2>/dev/null || exit "$rc" # otherwise wait was interrupted by a trap
done

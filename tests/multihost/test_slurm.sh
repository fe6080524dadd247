#!/usr/bin/env bash
# A real Slurm (slurm-cluster.sh: slurmctld + two slurmd on the two namespace
# hosts) runs launch/slurm.sbatch on --nodes=2:
#  1. a job stopped with `scancel --signal=USR1 --batch` writes a checkpoint
#     and ends with exit 75; submitting the same command again resumes from it
#     and ends with the same parameters, bit for bit, as an uninterrupted
#     2-rank run;
#  2. a job that reaches its time limit (--time=2, --signal=B:USR1@90) is
#     stopped the same way; resubmitted, it resumes from that checkpoint;
#  3. CDDP_REQUEUE=1: the stopped job requeues itself and finishes.
# Prints how long each part took. Exit 77 (skip) when Slurm, munge or the
# namespaces are not available, with the reason.
# usage: test_slurm.sh CDDP CKPT_COMPARE MPIRUN
set -u
CDDP=$1 CMP=$2 MPIRUN=$3
here=$(cd "$(dirname "$0")" && pwd)
SBATCH_SCRIPT=$(cd "$here/../../launch" && pwd)/slurm.sbatch
export CDDP_NETNS_PREFIX=cddps$$
SC=("$here/slurm-cluster.sh" -d "/tmp/cddp-slurm-$CDDP_NETNS_PREFIX")
W=$(mktemp -d /tmp/cddp_slurm.XXXXXX)
t0=$(date +%s)
"${SC[@]}" up
rc=$?
if [ $rc != 0 ]; then rm -rf "$W"; exit $rc; fi
trap '"${SC[@]}" down >/dev/null 2>&1; rm -rf "$W"' EXIT
echo "cluster up in $(($(date +%s) - t0)) s"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
eval "$("$here/netns-hosts.sh" mpi-env)"
export CDDP
slurm() { "${SC[@]}" run "$@"; }

"$CDDP" gen ctr "$W/d.h5" --rows 4000 --seed 3 --table-size 40 --quiet || exit 1
K=300
TRAIN=(train --model dlrm --variant tiny --train "$W/d.h5" --seed 5 --lr 0.1 --momentum 0.9 --batch 32
       --max-steps $K --log-every 1)
CK=$(printf 'ckpt-%010d.h5' $K)

# submit NAME [SBATCH OPTIONS...] -- [TRAIN OPTIONS...]: prints the job id
submit() {
  local name=$1 opts=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  slurm sbatch --parsable --nodes=2 --ntasks-per-node=1 --cpus-per-task=1 -o "$W/$name.out" "${opts[@]}" \
    "$SBATCH_SCRIPT" "${TRAIN[@]}" "$@"
}
# state JOB: "STATE EXITCODE" from scontrol (no accounting database needed)
state() {
  slurm scontrol show job "$1" 2>/dev/null |
    sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p; s/.*[^a-zA-Z]ExitCode=\([0-9]*\):.*/\1/p' | tr '\n' ' '
}
# wait_done JOB SECONDS: waits until the job has ended; prints "STATE EXITCODE"
wait_done() {
  local s
  for _ in $(seq $(($2 * 4))); do
    s=$(state "$1")
    case $s in PENDING* | RUNNING* | CONFIGURING* | COMPLETING* | REQUEUE* | "") sleep 0.25 ;; *) echo "$s"; return ;; esac
  done
  echo "TIMEOUT"
}
# wait_line FILE PATTERN SECONDS
wait_line() {
  for _ in $(seq $(($3 * 4))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.25; done
  return 1
}
newest() { ls "$1"/ckpt-*.h5 2>/dev/null | tail -1; }

# reference: the same 2-rank run without a stop
"$MPIRUN" --oversubscribe -np 2 "$CDDP" "${TRAIN[@]}" --threads 1 --progress plain --checkpoint-dir "$W/ref" \
  >"$W/ref.log" 2>&1 || { fail "reference run"; tail -5 "$W/ref.log"; }

# 1. scancel --signal=USR1, then the same command again
t1=$(date +%s)
job=$(submit a -- --checkpoint-dir "$W/ck_a")
if wait_line "$W/a.out" '^step 20/' 60; then
  slurm scancel --signal=USR1 --batch "$job"
  s=$(wait_done "$job" 150)
  ck=$(newest "$W/ck_a")
  if [ "$s" = "COMPLETED 75 " ] || [ "$s" = "FAILED 75 " ]; then
    echo "ok: scancel --signal=USR1: job $job ended $s with ${ck:-no checkpoint}"
  else
    fail "scancel --signal=USR1: job $job ended '$s' (want exit 75)"; tail -5 "$W/a.out"
  fi
  [ -n "$ck" ] && [ "$ck" != "$W/ck_a/$CK" ] || fail "no checkpoint before step $K after the stop"
  grep '^host ' "$W/a.out" | grep -q "$CDDP_NETNS_PREFIX-h2" || fail "no rank on $CDDP_NETNS_PREFIX-h2"
  job=$(submit a2 -- --checkpoint-dir "$W/ck_a")
  s=$(wait_done "$job" 120)
  if [ "$s" = "COMPLETED 0 " ] && grep -q "resumed from $ck" "$W/a2.out"; then
    out=$("$CMP" "$W/ref/$CK" "$W/ck_a/$CK" 0 2>&1) && echo "ok: resubmitted job resumed from $(basename "$ck"): $out" ||
      fail "resumed run differs from the uninterrupted one: $out"
  else
    fail "resubmitted job $job: '$s'"; tail -5 "$W/a2.out"
  fi
else
  fail "job $job printed no step 20 in 60 s"; tail -5 "$W/a.out"
fi
echo "part 1 (stop + resubmit) took $(($(date +%s) - t1)) s"

# 2. the time limit: SIGUSR1 90 s before it (Slurm may send it up to a minute
# early); mpirun takes ~40 s to end a multi-node job whose ranks exited 75
t2=$(date +%s)
job=$(submit b --time=2 --signal=B:USR1@90 -- --max-steps 1000000 --checkpoint-dir "$W/ck_b")
s=$(wait_done "$job" 200)
ck=$(newest "$W/ck_b")
if [ "$s" = "COMPLETED 75 " ] || [ "$s" = "FAILED 75 " ]; then
  echo "ok: time limit: job $job ended $s after $(($(date +%s) - t2)) s with $(basename "${ck:-none}")"
else
  fail "time limit: job $job ended '$s' (want exit 75)"; tail -5 "$W/b.out"
fi
if [ -n "$ck" ]; then
  job=$(submit b2 --time=2 --signal=B:USR1@90 -- --max-steps 1000000 --checkpoint-dir "$W/ck_b")
  if wait_line "$W/b2.out" "resumed from $ck" 60; then
    echo "ok: resubmitted after the time limit: resumed from $(basename "$ck")"
  else
    fail "resubmitted job $job did not resume from $ck"; tail -5 "$W/b2.out"
  fi
  slurm scancel "$job"
fi
echo "part 2 (time limit) took $(($(date +%s) - t2)) s"

# 3. CDDP_REQUEUE=1: stop, requeue, finish
t3=$(date +%s)
job=$(CDDP_REQUEUE=1 submit c --export=ALL --open-mode=append -- --checkpoint-dir "$W/ck_c")
if wait_line "$W/c.out" '^step 20/' 60; then
  slurm scancel --signal=USR1 --batch "$job"
  s=$(wait_done "$job" 300)
  if [ "$s" = "COMPLETED 0 " ] && grep -q "requeueing job $job" "$W/c.out" && [ -f "$W/ck_c/$CK" ]; then
    out=$("$CMP" "$W/ref/$CK" "$W/ck_c/$CK" 0 2>&1) && echo "ok: requeued job finished: $out" ||
      fail "requeued run differs from the uninterrupted one: $out"
  else
    fail "CDDP_REQUEUE=1 job $job: '$s'"; tail -5 "$W/c.out"
  fi
else
  fail "job $job printed no step 20 in 60 s"; tail -5 "$W/c.out"
fi
echo "part 3 (requeue) took $(($(date +%s) - t3)) s; total $(($(date +%s) - t0)) s"
echo "$fails failure(s)"
[ $fails = 0 ]

#!/usr/bin/env bash
# Measurements for the scaling model's validation (bench/scaling_model.py
# validate), all in one session so that calibration and measurement see the
# same machine load: for each repetition,
#   vit-fmnist (batch 64) and dlrm kaggle (batch 2048) traced on 1, 2 and 4
#   local ranks (1 thread each);
#   two namespace hosts (tests/multihost/netns-hosts.sh), one core each, with
#   the veth limited by tc tbf to 1 Gbit/s, then 100 Mbit/s: both models on
#   2 ranks, one per host;
# and before each configuration's runs, its link as the model reads it: three
# allreduce_perf tables on the same ranks, cores and network (back to back;
# spaced, each all-reduce alone after 10 ms of silence, about the spacing of
# a step's buckets; busy, spaced with one computing thread per rank, as
# during backward).
# Files: WORKDIR/perf_<cfg>[_spaced|_busy][_r<rep>].txt, WORKDIR/trace_<model>_<cfg>_<rep>.json.
# usage: bench/validate_model.sh [BUILD] [WORKDIR]
#   env: REPS (2), STEPS (12; steps 4..STEPS are traced), NETNS (1; 0 skips the hosts),
#        AUTOGROUP_NICE (unset; as in bench_scaling.sh: run under `setsid` to give only
#        this script's session that autogroup nice value)
set -u
if [ -n "${AUTOGROUP_NICE:-}" ]; then
  echo "$AUTOGROUP_NICE" >/proc/self/autogroup || exit 1
fi
B=$(readlink -f "${1:-build}")
D=${2:-/tmp/cddp_validate}
REPS=${REPS:-2} STEPS=${STEPS:-12} NETNS=${NETNS:-1}
here=$(cd "$(dirname "$0")" && pwd)
NH=$here/../tests/multihost/netns-hosts.sh
. "$(dirname "$0")/bench_data.sh"
bench_data "$B/cddp" "$D" 200000 || exit 1
echo "# validate_model: $(date -u '+%F %T UTC'), commit $(git -C "$here" rev-parse --short HEAD)," \
  "$(getconf _NPROCESSORS_ONLN) cores, load $(cut -d' ' -f1-3 /proc/loadavg), REPS=$REPS STEPS=$STEPS," \
  "$(cat /proc/self/autogroup 2>/dev/null)"
PERF=(-b 4K -e 4M -f 2 -w 2 -n 9)
# perf CFG LAUNCHER...: the three tables of one configuration, measured in
# every repetition (perf_CFG[_spaced|_busy]_rREP.txt); the model reads
# perf_CFG[...].txt, each size's median time over the repetitions so far
# (one 9-iteration table of queued messages moved by up to 30 %)
perf() {
  local cfg=$1 v out
  shift
  for v in ":" "_spaced:--gap 10000" "_busy:--gap 10000 --busy 1"; do
    out=$D/perf_$cfg${v%%:*}
    # shellcheck disable=SC2086
    "$@" "$B/bench/allreduce_perf" "${PERF[@]}" ${v#*:} >"${out}_r$rep.txt" ||
      { echo "failed: allreduce_perf $cfg ${v#*:}"; exit 1; }
    python3 - "$out.txt" "${out}"_r*.txt <<'PY' || exit 1
import statistics, sys
out, paths = sys.argv[1], sys.argv[2:]
tables = [open(p).read().splitlines() for p in paths]
world = int(tables[-1][0].split("nRanks")[1].split()[0])
times = {}
for t in tables:
    for line in t:
        if line.strip() and not line.startswith("#"):
            times.setdefault(int(line.split()[0]), []).append(float(line.split()[5]))
with open(out, "w") as f:
    for line in tables[-1]:
        if line.strip() and not line.startswith("#"):
            c = line.split()
            us = statistics.median(times[int(c[0])])
            alg = int(c[0]) / us / 1e3
            c[5:8] = [f"{us:.2f}", f"{alg:.2f}", f"{alg * 2 * (world - 1) / world:.2f}"]
            line = "".join(f"{x:>12}" for x in c)
        f.write(line + "\n")
PY
  done
}
args_of() {
  if [ "$1" = vit ]; then echo --model vit --variant vit-fmnist --train "$D/fmnist.h5" --batch 64
  else echo --model dlrm --variant kaggle --train "$D/ctr.h5" --batch 2048; fi
}
TRAIN=(--max-steps "$STEPS" --threads 1 --quiet --progress plain --trace-steps "4:$STEPS")
# local NP CFG MODEL REP
local_run() {
  # shellcheck disable=SC2046
  mpirun --oversubscribe -np "$1" "$B/cddp" train $(args_of "$3") "${TRAIN[@]}" \
    --trace "$D/trace_$3_$2_$4.json" >"$D/log" 2>&1 || { echo "failed: $*"; cat "$D/log"; exit 1; }
}
P=cddpval$$
hosts_run() { # CMD... on both namespace hosts, one rank each, rank r on core r (each
  # host's mpirun would bind its one rank to core 0: both on one core of the VM)
  eval "$("$NH" -p $P mpi-env)"
  # shellcheck disable=SC2016
  "$NH" -p $P exec h1 mpirun -np 2 --hostfile "$D/hosts" --bind-to none -x OMP_NUM_THREADS=1 \
    -x OPENBLAS_NUM_THREADS=1 sh -c 'exec taskset -c "$OMPI_COMM_WORLD_RANK" "$0" "$@"' "$@"
}
if [ "$NETNS" = 1 ]; then
  "$NH" -p $P up || exit $?
  trap '"$NH" -p $P down' EXIT
  printf '%s slots=1\n%s slots=1\n' "$P-h1" "$P-h2" >"$D/hosts"
fi
for rep in $(seq "$REPS"); do
  for model in vit dlrm; do local_run 1 1 $model $rep; done
  for np in 2 4; do
    perf local$np mpirun --oversubscribe -np $np
    for model in vit dlrm; do local_run $np local$np $model $rep; done
  done
  [ "$NETNS" = 1 ] || continue
  for rate in 1gbit 100mbit; do
    "$NH" -p $P rate $rate
    (perf $rate hosts_run) || exit 1
    for model in vit dlrm; do
      # shellcheck disable=SC2046
      (hosts_run "$B/cddp" train $(args_of $model) "${TRAIN[@]}" --trace "$D/trace_${model}_${rate}_$rep.json" \
        >"$D/log" 2>&1) || { echo "failed: $model $rate"; cat "$D/log"; exit 1; }
    done
  done
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/scaling_model.py" validate "$D"

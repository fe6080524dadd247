#!/usr/bin/env bash
# Time from a stop signal to the end of the job (docs/train.md "Pre-emption"):
# dlrm (kaggle variant, tables from the data) trains with --checkpoint-dir;
# once it is under way, SIGTERM goes to the single process, or SIGUSR1 to
# mpirun for 2 ranks (what launch/cddp-mpirun.sh forwards). Prints, per run,
# the seconds from the signal to the exit, the exit status and the checkpoint
# size.   usage: bench/bench_stop.sh [CDDP] [REPS]
set -u
CDDP=${1:-./build/cddp} REPS=${2:-3}
W=$(mktemp -d /tmp/cddp_bench_stop.XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$CDDP" gen ctr "$W/ctr.h5" --rows 20000 --seed 1 --quiet || exit 1
RUN=(train --model dlrm --train "$W/ctr.h5" --batch 64 --lr 0.05 --momentum 0.9 --epochs 100
     --threads 1 --progress plain --log-every 20)
for np in 1 2; do
  for r in $(seq "$REPS"); do
    d=$W/ck_${np}_$r
    L=()
    sig=TERM
    [ "$np" = 2 ] && L=(mpirun --oversubscribe -np 2) && sig=USR1
    "${L[@]}" "$CDDP" "${RUN[@]}" --checkpoint-dir "$d" --metrics-out "$d.jsonl" >"$d.out" 2>&1 &
    pid=$!
    until [ -s "$d.jsonl" ]; do sleep 0.05; done
    sleep 1
    t0=$(date +%s.%N)
    kill -$sig $pid
    wait $pid
    rc=$?
    t1=$(date +%s.%N)
    ck=$(ls "$d"/ckpt-*.h5)
    printf 'ranks %d run %d: signal -> exit %.2f s, status %d, %s (%d bytes), written in %s\n' \
      "$np" "$r" "$(echo "$t1 - $t0" | bc)" $rc "$(basename "$ck")" "$(stat -c %s "$ck")" \
      "$(sed -n 's/^checkpoint .* (\(.*\))$/\1/p' "$d.out")"
  done
done

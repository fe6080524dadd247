#!/usr/bin/env bash
# Sharded vs replicated embedding tables (issue 15), dlrm on the CPU:
# per-step bytes this rank sends for the embeddings, step time, exposed
# communication, samples/s per rank, for 1/2/4 ranks, kaggle- and
# terabyte-shaped models (26 tables with Criteo Kaggle's cardinalities capped
# at TABLE_SIZE rows; dim 16 / 128), replicated (sparse all-gather) against
# --embedding-sharding auto (all-to-all). One thread per rank, same per-rank
# batch (weak scaling); medians over the logging intervals after the first.
# Then bench/sharding_bytes.py extrapolates the bytes to 8/64/512 ranks and
# plots them (gnuplot).
# Repetitions are interleaved; the tables show medians over them.
# usage: bench/bench_sharding.sh CDDP WORKDIR
#   env: TABLE_SIZE=100000 REPS=1 STEPS=12 VARIANTS="kaggle terabyte" NPS="1 2 4",
#        AUTOGROUP_NICE (as in bench_scaling.sh: run under `setsid` to give only
#        this session priority on a shared machine)
set -u
CDDP=$1 D=$2
TABLE_SIZE=${TABLE_SIZE:-100000} REPS=${REPS:-1} STEPS=${STEPS:-12}
VARIANTS=${VARIANTS:-kaggle terabyte} NPS=${NPS:-1 2 4}
if [ -n "${AUTOGROUP_NICE:-}" ]; then
  echo "$AUTOGROUP_NICE" >/proc/self/autogroup || exit 1
fi
. "$(dirname "$0")/bench_data.sh"
bench_ctr "$CDDP" "$D/ctr.h5" 200000 4 "$TABLE_SIZE" || exit 1
: >"$D/results.jsonl"
for rep in $(seq "$REPS"); do
  for variant in $VARIANTS; do
    B=$([ $variant = kaggle ] && echo 1024 || echo 256)
    for np in $NPS; do
      for mode in replicated auto; do
        m=$D/m_${variant}_${mode}_${np}_${rep}.jsonl
        L=()
        [ "$np" -gt 1 ] && L=(mpirun --oversubscribe -np "$np")
        "${L[@]}" "$CDDP" train --model dlrm --variant $variant --train "$D/ctr.h5" --batch $B \
          --max-steps "$STEPS" --log-every 3 --threads 1 --lr 0.01 --embedding-sharding $mode \
          --progress plain --quiet --metrics-out "$m" >/dev/null 2>"$m.err" || {
          echo "FAIL: $variant $mode np=$np (see $m.err)"
          continue
        }
        python3 - "$m" $variant $mode $np $B "$(cut -d' ' -f1 /proc/loadavg)" >>"$D/results.jsonl" <<'PY'
import json, statistics, sys
path, variant, mode, np_, B, load = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if '"train"' in l][1:]
med = lambda k: statistics.median(r.get(k, 0) for r in rows)
sps = med("samples_per_s") / int(np_)
print(json.dumps(dict(variant=variant, mode=mode, np=int(np_), batch=int(B), load=float(load),
                      per_rank_sps=sps, step_ms=1e3 * int(B) / sps, bytes=med("bytes"), a2a_bytes=med("a2a_bytes"),
                      exposed_comm_ms=med("exposed_comm_ms"), exposed_a2a_ms=med("exposed_a2a_ms"))))
PY
        tail -1 "$D/results.jsonl"
      done
    done
  done
done
python3 "$(dirname "$0")/sharding_bytes.py" "$D/results.jsonl" "$D"

#!/usr/bin/env bash
# Cost of `cddp train --trace`: the same run with tracing off and on (every
# step traced), alternated REPS times, on 1 and 2 ranks, 1 thread per rank.
# Figure: median global samples/s over the logging intervals after the first,
# then the median over repetitions; overhead = 1 - on/off.
# usage: bench/bench_trace_overhead.sh [CDDP] [WORKDIR]
#   env: REPS (5), STEPS (30), MODELS ("vit dlrm"), AUTOGROUP_NICE (unset; as in
#        bench_scaling.sh: run under `setsid` to give only this script's session
#        that autogroup nice value)
set -u
if [ -n "${AUTOGROUP_NICE:-}" ]; then
  echo "$AUTOGROUP_NICE" >/proc/self/autogroup || exit 1
fi
CDDP=${1:-build/cddp}
D=${2:-/tmp/cddp_bench_trace}
REPS=${REPS:-5} STEPS=${STEPS:-30} MODELS=${MODELS:-"vit dlrm"}
. "$(dirname "$0")/bench_data.sh"
bench_data "$CDDP" "$D" 200000 || exit 1
echo "# bench_trace_overhead: $(date -u '+%F %T UTC'), commit $(git rev-parse --short HEAD 2>/dev/null)," \
  "$(getconf _NPROCESSORS_ONLN) cores, load $(cut -d' ' -f1-3 /proc/loadavg), REPS=$REPS STEPS=$STEPS," \
  "$(cat /proc/self/autogroup 2>/dev/null)"
rm -f "$D/results.txt"
for model in $MODELS; do
  if [ "$model" = vit ]; then
    args=(--model vit --variant vit-fmnist --train "$D/fmnist.h5" --batch 64)
  else
    args=(--model dlrm --variant kaggle --train "$D/ctr.h5" --batch 2048)
  fi
  for rep in $(seq "$REPS"); do
    for np in 1 2; do
      for tr in off on; do
        m=$D/m.jsonl
        rm -f "$m"
        extra=()
        [ $tr = on ] && extra=(--trace "$D/t.json" --trace-steps 1:$STEPS)
        mpirun --oversubscribe -np $np "$CDDP" train "${args[@]}" --max-steps "$STEPS" --threads 1 \
          --log-every 5 --quiet --progress plain --metrics-out "$m" "${extra[@]}" >/dev/null 2>"$D/err" ||
          { echo "run failed: $model np=$np trace=$tr"; cat "$D/err"; exit 1; }
        python3 - "$m" "$model" "$np" "$tr" >>"$D/results.txt" <<'PY'
import json, statistics, sys
path, model, np_, tr = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if '"train"' in l][1:]
print(model, np_, tr, statistics.median(r["samples_per_s"] for r in rows))
PY
      done
    done
  done
done
python3 - "$D/results.txt" <<'PY'
import statistics, sys
R = [l.split() for l in open(sys.argv[1])]
print("| model | ranks | samples/s, trace off | samples/s, trace on | overhead |")
print("| --- | ---: | ---: | ---: | ---: |")
for model in dict.fromkeys(r[0] for r in R):
    for np_ in ("1", "2"):
        v = {t: statistics.median(float(r[3]) for r in R if r[0] == model and r[1] == np_ and r[2] == t)
             for t in ("off", "on")}
        print(f"| {model} | {np_} | {v['off']:.0f} | {v['on']:.0f} | {100 * (1 - v['on'] / v['off']):+.1f} % |")
PY

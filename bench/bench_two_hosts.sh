#!/usr/bin/env bash
# Two hosts joined by a throttled link (tests/multihost/netns-hosts.sh, tc
# tbf): how much of the gradient communication overlap hides at each rate.
# For each link rate (unlimited veth, 1 Gbit/s, 100 Mbit/s) runs, interleaved
# REPS times, dlrm kaggle on `cddp gen ctr` data, 1 rank per host x batch B,
# with overlap and with --no-overlap, and reports medians over repetitions of
# the per-interval medians (logging intervals after the first) of
#   samples/s (global), comm_ms, exposed_comm_ms per step,
#   bytes sent over the veth per step (both directions, byte counters).
# A 1-rank run (one host, no communication) gives the compute-only rate.
# usage: bench/bench_two_hosts.sh [CDDP] [WORKDIR]
#   env: REPS (3), STEPS (30), BATCH (1024), RATES ("none 1gbit 100mbit"),
#        MODEL_ARGS (default "--model dlrm --variant kaggle")
set -u
CDDP=$(readlink -f "${1:-build/cddp}")
D=${2:-/tmp/cddp_bench_two_hosts}
REPS=${REPS:-3} STEPS=${STEPS:-30} BATCH=${BATCH:-1024}
RATES=${RATES:-"none 1gbit 100mbit"}
read -r -a MODEL <<<"${MODEL_ARGS:---model dlrm --variant kaggle}"
here=$(cd "$(dirname "$0")" && pwd)
NH=("$here/../tests/multihost/netns-hosts.sh" -p cddpb$$)
. "$here/bench_data.sh"
export CDDP
bench_ctr "$CDDP" "$D/ctr.h5" 200000 5 || exit 1
"${NH[@]}" up || exit 1
trap '"${NH[@]}" down' EXIT
eval "$("${NH[@]}" mpi-env)"
printf 'cddpb%s-h1 slots=1\ncddpb%s-h2 slots=1\n' $$ $$ >"$D/hosts"
# Both namespace "hosts" are this one machine: each host's mpirun binds its
# one rank to its first core (launch/cddp-mpirun.sh binds to cores), which
# would put both ranks on core 0. Rank r runs on core r, as on two real hosts.
printf '#!/bin/sh\nexec taskset -c "$OMPI_COMM_WORLD_RANK" "%s" "$@"\n' "$CDDP" >"$D/cddp-on-core"
chmod +x "$D/cddp-on-core"

echo "# bench_two_hosts: $(date -u '+%F %T UTC'), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null)," \
  "$(getconf _NPROCESSORS_ONLN) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# ${MODEL[*]}, batch $BATCH per rank, $STEPS steps, 1 thread per rank, REPS=$REPS"

# one RATE NP OVERLAP REP: one run, one JSON line of figures in $D/results.jsonl
one() {
  local rate=$1 np=$2 ov=$3 rep=$4 name=$1-$2-$3-$4 a0 b0 a1 b1
  local args=("${MODEL[@]}" --train "$D/ctr.h5" --batch "$BATCH" --max-steps "$STEPS" --log-every 5
              --threads 1 --progress plain --metrics-out "$D/$name.jsonl")
  [ "$ov" = 1 ] || args+=(--no-overlap)
  read -r a0 b0 < <("${NH[@]}" bytes)
  if [ "$np" = 1 ]; then
    "${NH[@]}" exec h1 "$CDDP" train "${args[@]}" >"$D/$name.log" 2>&1
  else
    CDDP=$D/cddp-on-core "${NH[@]}" exec h1 "$here/../launch/cddp-mpirun.sh" -n 2 -H "$D/hosts" \
      train "${args[@]}" >"$D/$name.log" 2>&1
  fi || { echo "run $name failed:"; tail -3 "$D/$name.log"; return; }
  read -r a1 b1 < <("${NH[@]}" bytes)
  python3 - "$D/$name.jsonl" "$rate" "$np" "$ov" "$(((a1 - a0 + b1 - b0) / STEPS))" >>"$D/results.jsonl" <<'PY'
import json, statistics, sys
path, rate, np_, ov, bps = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if '"train"' in l]
rows = [r for r in rows if r.get("type") == "train"][1:]  # drop the first interval (start-up)
med = lambda k: statistics.median(r[k] for r in rows) if rows and k in rows[0] else float("nan")
print(json.dumps({"rate": rate, "np": int(np_), "overlap": int(ov), "samples_per_s": med("samples_per_s"),
                  "comm_ms": med("comm_ms"), "exposed_comm_ms": med("exposed_comm_ms"),
                  "bytes_per_step": int(bps)}))
PY
}

rm -f "$D/results.jsonl"
for rep in $(seq "$REPS"); do
  "${NH[@]}" rate off
  one none 1 1 "$rep"
  for rate in $RATES; do
    if [ "$rate" = none ]; then "${NH[@]}" rate off; else "${NH[@]}" rate "$rate"; fi
    one "$rate" 2 1 "$rep"
    one "$rate" 2 0 "$rep"
  done
done

python3 - "$D/results.jsonl" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
def m(sel, k):
    v = [r[k] for r in rs if all(r[a] == b for a, b in sel.items())]
    return statistics.median(v) if v else float("nan")
base = m({"np": 1}, "samples_per_s")
print("| link | overlap | samples/s (2 ranks) | vs 1 rank x 1 | comm ms/step | exposed ms/step | exposed/comm | MB/step over veth |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for rate in dict.fromkeys(r["rate"] for r in rs if r["np"] == 2):
    for ov in (1, 0):
        s = {"rate": rate, "np": 2, "overlap": ov}
        sp, c, e = m(s, "samples_per_s"), m(s, "comm_ms"), m(s, "exposed_comm_ms")
        print(f"| {rate} | {'on' if ov else 'off'} | {sp:.0f} | {sp / base:.2f} | {c:.1f} | {e:.1f} | "
              f"{e / c if c else float('nan'):.2f} | {m(s, 'bytes_per_step') / 1e6:.2f} |")
print(f"\n1 rank, no communication: {base:.0f} samples/s")
PY

#!/usr/bin/env bash
# PNG figures with Debian's gnuplot (gnuplot-nox) and python3's json module.
#
#   bench/plot.sh metrics RUN.jsonl OUT.png   one --metrics-out file -> loss, learning
#                                             rate, eval metric, samples/s and exposed
#                                             communication per step (one image)
#   bench/plot.sh results                     every figure bench/RESULTS.md links,
#                                             from the committed files in bench/results
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 2; }

metrics() {
  local in=$1 out=$2 tmp
  [ -r "$in" ] || { echo "plot.sh: cannot read $in" >&2; exit 2; }
  tmp=$(mktemp -d)
  python3 - "$in" "$tmp" <<'PY'
import json, sys
src, d = sys.argv[1:]
train, ev, metric = [], [], None
for n, line in enumerate(open(src), 1):
    try:
        o = json.loads(line)
    except ValueError:
        sys.exit(f"plot.sh: {src}:{n}: not a JSON object")
    if o.get("type") == "train":
        train.append(o)
    elif o.get("type") == "eval":
        metric = metric or next((k for k in ("auc", "accuracy") if k in o), None) or \
            next((k for k in o if k.startswith("recall@")), None)
        ev.append((o["step"], o.get(metric)))
if not train:
    sys.exit(f"plot.sh: {src}: no \"type\":\"train\" lines (a --metrics-out file?)")
with open(f"{d}/train.dat", "w") as f:
    for o in train:
        f.write(f'{o["step"]} {o["loss"]} {o["lr"]} {o["samples_per_s"]} {o["exposed_comm_ms"]} {o["backward_ms"]}\n')
with open(f"{d}/eval.dat", "w") as f:
    for s, v in ev:
        if v is not None:
            f.write(f"{s} {v}\n")
open(f"{d}/metric", "w").write(metric or "")
PY
  local metric
  metric=$(cat "$tmp/metric")
  gnuplot <<GP
set terminal pngcairo size 1500,900 font ",11" noenhanced
set output "$out"
set multiplot layout 2,3 title "$(basename "$in")"
set grid
set xlabel "step"
set key off
set title "training loss"
plot "$tmp/train.dat" using 1:2 with linespoints pt 7 ps 0.4
set title "learning rate"
set yrange [0:*]
plot "$tmp/train.dat" using 1:3 with lines lw 2
set autoscale y
set title "eval ${metric:-metric}"
if ($( [ -s "$tmp/eval.dat" ] && echo 1 || echo 0 )) { plot "$tmp/eval.dat" using 1:2 with linespoints pt 7 } else { unset title; set label 1 "no evaluation in this file" at graph 0.3,0.5; plot 2 notitle lc rgb "white"; unset label 1 }
set title "global samples/s"
plot "$tmp/train.dat" using 1:4 with linespoints pt 7 ps 0.4
set title "ms per step: exposed communication (red), backward (blue)"
plot "$tmp/train.dat" using 1:5 with linespoints pt 7 ps 0.4 lc rgb "red", "" using 1:6 with lines lc rgb "blue"
unset multiplot
GP
  rm -rf "$tmp"
  echo "plot.sh: wrote $out"
}

results() {
  local R=$here/results
  python3 "$here/scaling_model.py" project "$R/projections.json" --out-dir "$R" >/dev/null
  for m in dlrm deit vitf; do
    local title plots="" f
    title=$(sed -n 's/^# model: //p' "$(ls "$R"/projection_${m}_*.dat | head -1)")
    for f in "$R"/projection_${m}_*.dat; do
      plots+="\"$f\" using 1:(100*\$3) with linespoints lw 2 title \"$(sed -n 's/^# label: //p' "$f")\", "
    done
    gnuplot <<GP
set terminal pngcairo size 1100,650 font ",11" noenhanced
set output "$here/scaling_projection_$m.png"
set title "$title: projected weak-scaling efficiency (model, not measured)"
set logscale x 2
set xrange [8:1024]
set yrange [0:105]
set grid
set xlabel "GPUs (8 per node)"
set ylabel "efficiency %"
set key bottom left
plot ${plots%, }
GP
  done
  if [ -f "$R/validation.dat" ]; then
    gnuplot <<GP
set terminal pngcairo size 1100,650 font ",11" noenhanced
set output "$here/scaling_validation.png"
set title "Scaling model vs measured step time (2-core VM; bench/RESULTS.md)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "step time, ms"
set grid ytics
set xtics rotate by -25 font ",9"
set key top left
plot "$R/validation.dat" using 2:xtic(1) title "measured", "" using 3 title "predicted (compute from the same run, measured link tables)", \
  "" using 4 title "predicted with one alpha + beta per link"
GP
  fi
  local j
  for j in "$R"/metrics_*.jsonl; do
    [ -e "$j" ] && metrics "$j" "$here/$(basename "${j%.jsonl}").png"
  done
  echo "plot.sh: figures in $here"
}

case ${1:-} in
metrics) [ $# = 3 ] || { sed -n '4,8p' "$0" >&2; exit 2; }; metrics "$2" "$3" ;;
results) results ;;
*) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac

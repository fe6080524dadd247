#!/bin/sh
# Quality results of issue 6 on planted-ground-truth data (not a ctest test):
#   dlrm on `cddp gen ctr`: final eval AUC within 0.01 of the val file's bayes_auc;
#   two_tower on `cddp gen twotower`: Recall@50 >= 80% of the val file's oracle_recall_at_50.
# Each generator call writes train and validation files from the SAME planted
# model (--val-rows); the validation file's attributes are the reference.
# usage: sh bench/results_quality.sh [BUILD_DIR (build)] [WORK_DIR (/tmp/cddp-quality)] [dlrm|two_tower|all]
# 2 ranks on CPU, one thread each.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd); W=${2:-/tmp/cddp-quality}; WHICH=${3:-all}
B=$BUILD/cddp
[ -x "$B" ] || { echo "no $B: cmake -S . -B build && cmake --build build --target cddp -j2"; exit 2; }
mkdir -p "$W"; cd "$W"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RUN="mpirun --oversubscribe -np 2"
attr() { "$B" info "$1" | sed -n "s/^ *$2 *//p" | head -1; }

run() { # NAME CONFIG TRAIN VAL [extra train options]
  name=$1; cfg=$2; tr=$3; va=$4; shift 4
  t0=$(date +%s)
  $RUN "$B" train --config "$SRC/configs/$cfg" --train "$tr" --eval "$va" --progress plain \
       --metrics-out "$name.jsonl" "$@" >"$name.log" 2>&1 || { tail -20 "$name.log"; exit 1; }
  t1=$(date +%s)
  echo "$name: $(grep '^eval' "$name.log" | tail -1)"
  echo "$name: $(grep '^done' "$name.log")"
  echo "$name: wall $((t1 - t0)) s (mpirun, 2 ranks)"
}

if [ "$WHICH" = all ] || [ "$WHICH" = dlrm ]; then
  [ -e ctr-val.h5 ] || "$B" gen ctr ctr.h5 --rows 4000000 --val-rows 200000 --seed 1
  echo "ctr-val.h5 bayes_auc $(attr ctr-val.h5 bayes_auc)"
  run dlrm dlrm-synthetic.ini ctr.h5 ctr-val.h5
  auc=$(grep '^eval' dlrm.log | tail -1 | sed 's/.*auc \([0-9.]*\).*/\1/')
  awk -v a="$auc" -v b="$(attr ctr-val.h5 bayes_auc)" 'BEGIN { printf "dlrm: AUC %.5f, bayes %.5f, gap %.5f: %s\n", a, b, b - a, (b - a <= 0.01 ? "PASS (<= 0.01)" : "FAIL (> 0.01)") }'
fi
if [ "$WHICH" = all ] || [ "$WHICH" = two_tower ]; then
  [ -e tt-val.h5 ] || "$B" gen twotower tt.h5 --rows 200000 --val-rows 20000 --seed 1
  echo "tt-val.h5 oracle_recall_at_50 $(attr tt-val.h5 oracle_recall_at_50)"
  run two_tower two-tower-synthetic.ini tt.h5 tt-val.h5
  rec=$(grep '^eval' two_tower.log | tail -1 | sed 's/.*recall@50 \([0-9.]*\).*/\1/')
  awk -v r="$rec" -v o="$(attr tt-val.h5 oracle_recall_at_50)" 'BEGIN { printf "two_tower: Recall@50 %.4f, oracle %.4f, ratio %.3f: %s\n", r, o, r / o, (r >= 0.8 * o ? "PASS (>= 0.8)" : "FAIL (< 0.8)") }'
fi

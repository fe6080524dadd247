#!/bin/sh
# End to end through the command line: gen (h5 and Criteo TSV, plain and
# gzip) -> convert -> info -> load; the real Criteo sample; Fashion-MNIST IDX
# when Debian's dataset-fashion-mnist is installed.
# usage: test_cli.sh TOOL SCRATCH_DIR SOURCE_DIR
set -eu
T=$1; D=$2; S=$3
rm -rf "$D"; mkdir -p "$D"; cd "$D"
check() { grep -q -- "$2" "$1" || { echo "FAIL: '$2' not in $1:"; cat "$1"; exit 1; }; }

"$T" gen ctr c.h5 --rows 3000 --seed 5 --quiet
"$T" info c.h5 >info.txt
check info.txt "schema *cddp.ctr.v1"
check info.txt "rows *3000"
check info.txt "bayes_auc"
check info.txt "labels .* positive"
"$T" load c.h5 --world 2 --rank 1 --batch 100 --shuffle block >load.txt
check load.txt "rows 1500 "

"$T" gen ctr raw.tsv --rows 2000 --seed 6 --format tsv --quiet
"$T" gen ctr raw.tsv.gz --rows 2000 --seed 6 --format tsv --quiet
[ "$(wc -l <raw.tsv)" = 2000 ]
[ "$(gzip -dc raw.tsv.gz | cmp - raw.tsv && echo same)" = same ]
"$T" convert criteo raw.tsv a.h5 --table-size 5000 --quiet
"$T" convert criteo raw.tsv.gz b.h5 --table-size 5000 --quiet
"$T" load a.h5 --batch 50 >a.txt
"$T" load b.h5 --batch 50 >b.txt
cmp a.txt b.txt
"$T" convert criteo raw.tsv t.h5 --val-fraction 0.25 --quiet
"$T" info t.h5 >t.txt; "$T" info t-val.h5 >v.txt
tr=$(sed -n 's/^  rows *//p' t.txt); va=$(sed -n 's/^  rows *//p' v.txt)
[ $((tr + va)) = 2000 ] || { echo "FAIL: split lost rows: $tr + $va"; exit 1; }
"$T" convert criteo raw.tsv u.h5 --val-fraction 0.25 --val-out held.h5 --min-count 2 --quiet
[ -e held.h5 ] && [ ! -e u-val.h5 ]

"$T" convert criteo "$S/criteo-sample-1999.tsv" s.h5 >conv.txt
check conv.txt "1999 lines -> 1999 rows"
"$T" info s.h5 >s.txt
check s.txt "418 positive"
"$T" load s.h5 --eval contiguous --world 3 --rank 2 --batch 64 >l.txt
check l.txt "rows 667 "

"$T" gen twotower tt.h5 --rows 2000 --num-users 50 --num-items 300 --num-cats 7 --hist-len 5 --quiet
"$T" info tt.h5 >tt.txt
check tt.txt "oracle_recall_at_50"
check tt.txt "hist_len *5"
"$T" load tt.h5 --shuffle full --batch 100 >/dev/null
"$T" gen images im.h5 --rows 500 --num-classes 4 --height 8 --width 9 --channels 3 --quiet
"$T" info im.h5 >im.txt
check im.txt "8x9x3"
check im.txt "num_classes *4"

# --val-rows: a validation file from the same planted model (default name OUT-val.h5)
"$T" gen ctr g.h5 --rows 4000 --val-rows 3000 --seed 7 --quiet
"$T" info g-val.h5 >gv.txt
check gv.txt "rows *3000"
check gv.txt "bayes_auc"
check gv.txt "split.*val"
"$T" gen twotower gt.h5 --rows 1000 --val-rows 500 --val-out gt_held.h5 --num-users 50 --num-items 300 --quiet
"$T" info gt_held.h5 >gth.txt
check gth.txt "oracle_recall_at_50"
[ ! -e gt-val.h5 ] || { echo "FAIL: default val file written despite --val-out"; exit 1; }
"$T" gen images gi.h5 --rows 100 --val-rows 50 --height 8 --width 8 --quiet
[ -e gi-val.h5 ] || { echo "FAIL: gi-val.h5 missing"; exit 1; }
expect2() { rc=0; "$@" >/dev/null 2>e2.txt || rc=$?; [ $rc = 2 ] || { echo "FAIL: exit $rc, not 2: $*"; cat e2.txt; exit 1; }; }
expect2 "$T" gen ctr bad.h5 --rows 100 --val-rows 0
expect2 "$T" gen ctr bad.h5 --rows 100 --val-rows -5
expect2 "$T" gen ctr bad.h5 --rows 100 --val-rows 1x
expect2 "$T" gen ctr bad.h5 --rows 100 --val-out x.h5
expect2 "$T" gen ctr bad.h5 --rows 100 --val-rows 10 --val-out bad.h5
expect2 "$T" gen ctr bad.tsv --rows 100 --val-rows 10 --format tsv
expect2 "$T" gen twotower bad.h5 --rows 100 --val-rows
[ ! -e bad.h5 ] && [ ! -e bad-val.h5 ] || { echo "FAIL: output written on a usage error"; exit 1; }

F=/usr/share/datasets/fashion-mnist
if [ -e $F/t10k-images-idx3-ubyte.gz ]; then
  "$T" convert idx $F/t10k-images-idx3-ubyte.gz $F/t10k-labels-idx1-ubyte.gz fm.h5 --quiet
  "$T" info fm.h5 >fm.txt
  check fm.txt "rows *10000"
  check fm.txt "28x28x1"
  check fm.txt "num_classes *10"
  check fm.txt " 0:1000 1:1000"
  "$T" load fm.h5 --batch 128 --shuffle full >/dev/null
fi
echo "data_cli: all passed"

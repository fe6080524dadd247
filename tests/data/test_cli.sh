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

#!/usr/bin/env bash
# Bad sharding configurations end the job with exit 2 and a message naming
# the table, never a hang (each case under `timeout 60`):
#   row_rows     4 ranks row-wise over a 3-row table
#   plan_table   --embedding-plan names a table the model does not have
#   plan_rank    --embedding-plan puts a table on rank 5 of a 2-rank job
#   ckpt_shape   resuming a sharded checkpoint whose tables have other sizes
#   ckpt_shard   a checkpoint whose shard file is missing (exit 3 naming it)
#   tt_world     two_tower (per-rank logQ state) resumed on another number of ranks
#   ckpt_damaged a shard file with a flipped byte (CORRUPT = tests/train's ckpt_corrupt):
#                exit 3 naming the table
# usage: shard_fail.sh CDDP MPIRUN CASE [CORRUPT]
set -u
CDDP=$1 MPIRUN=$2 CASE=$3 CORRUPT=${4:-}
W=$(mktemp -d /tmp/cddp_shard_fail.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
T=(train --model dlrm --variant tiny --train "$W/d.h5" --batch 16 --threads 1 --max-steps 4
   --progress plain --timeout 20)
expect() { # want-rc regex np args...
  local want=$1 re=$2 np=$3
  shift 3
  local t0=$SECONDS out rc
  out=$(timeout 60 "$MPIRUN" --oversubscribe -np "$np" "$CDDP" "$@" 2>&1)
  rc=$?
  if [ $rc = "$want" ] && grep -Eq -e "$re" <<<"$out"; then
    echo "ok: $CASE: exit $rc after $((SECONDS - t0)) s: $(grep -Eo -e "$re" <<<"$out" | head -1)"
    exit 0
  fi
  echo "FAIL: $CASE: exit $rc (want $want), message /$re/ $(grep -Eq -e "$re" <<<"$out" && echo found || echo missing)"
  echo "$out" | tail -20
  exit 1
}
case $CASE in
row_rows)
  expect 2 'embedding table emb_l.8.weight: 3 rows cannot be split row-wise over 4 ranks' \
    4 "${T[@]}" --embedding-sharding row ;;
plan_table)
  expect 2 '--embedding-plan: no embedding table named emb_l.26' \
    2 "${T[@]}" --embedding-sharding table --embedding-plan emb_l.3=row,emb_l.26=table ;;
plan_rank)
  expect 2 '--embedding-plan: table emb_l.3 names rank 5, this job has ranks 0..1' \
    2 "${T[@]}" --embedding-plan emb_l.3=table:5 ;;
ckpt_shape)
  "$MPIRUN" --oversubscribe -np 2 "$CDDP" "${T[@]}" --embedding-sharding row \
    --embedding-plan emb_l.8=table --max-table-rows 16 --checkpoint-dir "$W/c" >/dev/null 2>&1 || exit 1
  expect 2 'ckpt-0000000004.h5: /model/emb_l.0.weight has shape 16x4, the model expects 40x4' \
    2 "${T[@]}" --max-steps 8 --embedding-sharding table --resume "$W/c/ckpt-0000000004.h5" \
    --checkpoint-dir "$W/c2" ;;
ckpt_shard)
  "$MPIRUN" --oversubscribe -np 2 "$CDDP" "${T[@]}" --embedding-sharding table \
    --checkpoint-dir "$W/c" >/dev/null 2>&1 || exit 1
  rm "$W/c/ckpt-0000000004-shard-00001.h5"
  expect 3 'emb_l.1.weight needs shard file .*ckpt-0000000004-shard-00001.h5' \
    2 "${T[@]}" --max-steps 8 --embedding-sharding row --embedding-plan emb_l.8=table \
    --resume auto --checkpoint-dir "$W/c" ;;
ckpt_damaged)
  "$MPIRUN" --oversubscribe -np 2 "$CDDP" "${T[@]}" --embedding-sharding table \
    --checkpoint-dir "$W/c" >/dev/null 2>&1 || exit 1
  "$CORRUPT" "$W/c/ckpt-0000000004-shard-00001.h5" /model/emb_l.1.weight >/dev/null || exit 1
  expect 3 'cannot read rows [0-9]+\.\.[0-9]+ of emb_l.1.weight: its shard file is damaged' \
    2 "${T[@]}" --max-steps 8 --embedding-sharding row --embedding-plan emb_l.8=table \
    --resume "$W/c/ckpt-0000000004.h5" --checkpoint-dir "$W/c" ;;
tt_world)
  "$CDDP" gen twotower "$W/t.h5" --rows 400 --seed 3 --num-users 50 --num-items 60 --num-cats 5 \
    --hist-len 4 --quiet || exit 1
  TT=(train --model two_tower --variant tiny --train "$W/t.h5" --batch 16 --threads 1
      --progress plain --timeout 20 --embedding-sharding table)
  "$MPIRUN" --oversubscribe -np 2 "$CDDP" "${TT[@]}" --max-steps 4 --checkpoint-dir "$W/c" \
    >/dev/null 2>&1 || exit 1
  expect 2 'written by 2 ranks, this job has 4; two_tower keeps per-rank state' \
    4 "${TT[@]}" --max-steps 8 --resume auto --checkpoint-dir "$W/c" ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac

#!/usr/bin/env bash
# Sharded embedding tables (issue 15, "Proof"): N ranks with tables split
# across them (table-wise, row-wise, mixed, auto) train to the same
# parameters as 1 rank with every table replicated, on the same global batch
# (the DistributedSampler gives step s of both runs the same samples). 10
# steps, global batch 64, dlrm tiny; every /model tensor of the final
# checkpoints (sharded tables read through their whole-table virtual
# datasets) within 1e-5 (ckpt_compare: max|a-b| / max|b| per tensor).
# Data: `cddp gen` tables of uneven sizes (3 to 40 rows), and a converted
# TSV in which every id of table 0 is the same (one owner gets all of them)
# and table 1 has two ids. Adagrad runs with --eps 1e-3: with the default
# 1e-10 its first step is ~lr*sign(g), so a row whose gradient is zero up to
# rounding moves by +-lr either way (measured 2.9e-5 between 1 and 2
# replicated ranks: not a sharding effect).
# Half precision on the wire: --grad-compress fp16/bf16 (sharded gradients
# and dense buckets) within 2(N+1)u as in equiv.sh; AMP (vectors travel in
# the AMP type) against a 1-rank AMP run within 2u (one extra rounding of the
# looked-up vectors; u = 2^-11 fp16, 2^-8 bf16).
# Resume: 4 ranks row-wise stopped after 5 steps, resumed on 2 ranks
# table-wise, equals an uninterrupted 2-rank table-wise run.
# A negative control must exceed the tolerance.
# two_tower (MODEL=two_tower): --gather-negatives (so N ranks see the 1-rank
# batch's negatives), tables table-wise, row-wise (the mean-pooled history
# bags are split across owners), mixed and auto, SGD and Adagrad, with an
# evaluation pass (recall must match too).
# Split bags (two_tower): a dataset whose every history holds 2 ids from each
# quarter of the items (h5py), hist_emb alone row-wise: each bag is split
# over every owner, which sums its fragment; equivalence as above, and the
# all-to-all bytes per step that rank 0 reports (a2a_bytes) equal the count
# computed from that layout (one vector per fragment, not per id). A
# negative control: half the batch per rank must differ.
# dlrm_cuda, two_tower_cuda: the same cases with --device cuda and, on N
# ranks, --comm nccl (the CUDA backend and NCCL all-to-all; in CI under the
# CPU emulation), against 1 rank on the same device; then, with --comm mpi
# (device buffers staged through pinned host memory while the reducer's
# buckets are in flight too), dlrm's plans, Adagrad and AMP and two_tower's
# plans (table, row, mixed, auto, row-wise Adagrad; 2 and 4 ranks) and split
# bags. CDDP_SHARD_COMM=mpi (scripts/gpu-check.sh with fewer GPUs than 4:
# NCCL needs one GPU per rank) runs the multi-rank cases with --comm mpi only.
# Determinism (two_tower_cuda): the 4-rank split-bag run again with another
# CUEMU_SEED (the emulator's block and thread order; on a GPU, just another
# run) must give the same checkpoint bit for bit: the sender sums each slot's
# fragments in a fixed order.
# usage: shard_equiv.sh CDDP CKPT_COMPARE MPIRUN [dlrm|two_tower|dlrm_cuda|two_tower_cuda]
set -u
CDDP=$1 CMP=$2 MPIRUN=$3 MODEL=${4:-dlrm}
MULTI=() CUDA= ALSO_MPI=
case $MODEL in
  *_cuda)
    MODEL=${MODEL%_cuda} DEV=(--device cuda) MULTI=(--comm ${CDDP_SHARD_COMM:-nccl}) CUDA=1
    [ "${CDDP_SHARD_COMM:-nccl}" = mpi ] || ALSO_MPI=1 ;;
esac
COMM=(${MULTI[@]+"${MULTI[@]}"})
W=$(mktemp -d /tmp/cddp_shard_equiv.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export CDDP_CHECK_REPLICAS=1
K=10 G=64 TOL=1e-5
if [ "$MODEL" = two_tower ]; then
  "$CDDP" gen twotower "$W/d.h5" --rows 1200 --seed 3 --num-users 100 --num-items 120 \
    --num-cats 8 --hist-len 4 --quiet || exit 1
  "$CDDP" gen twotower "$W/e.h5" --rows 301 --seed 4 --num-users 100 --num-items 120 \
    --num-cats 8 --hist-len 4 --quiet || exit 1
  ARGS=(--model two_tower --variant tiny --lr 0.05 --gather-negatives --seed 7 --shuffle full
        --threads 1 --progress plain --log-every 1000 --eval "$W/e.h5" ${DEV[@]+"${DEV[@]}"})
fi
if [ "$MODEL" = dlrm ]; then
  "$CDDP" gen ctr "$W/d.h5" --rows 1200 --seed 2 --table-size 40 --quiet || exit 1
  "$CDDP" gen ctr "$W/t.tsv" --rows 1200 --seed 3 --table-size 40 --format tsv --quiet || exit 1
  awk -F'\t' 'BEGIN { OFS = "\t" } { $15 = "0badf00d"; $16 = (NR % 2 ? "1234abcd" : "1234abce"); print }' \
    "$W/t.tsv" >"$W/one.tsv"
  "$CDDP" convert criteo "$W/one.tsv" "$W/one.h5" --table-size 40 >/dev/null || exit 1
  ARGS=(--model dlrm --variant tiny --lr 0.1 --seed 7 --shuffle full --threads 1 --progress plain
        --log-every 1000 ${DEV[@]+"${DEV[@]}"})
fi
ADA=(--optimizer adagrad --eps 1e-3)
ck() { printf '%s/%s/ckpt-%010d.h5' "$W" "$1" "$2"; }

# run NAME NP BATCH DATA ARGS...
run() {
  local name=$1 np=$2 b=$3 data=$4
  shift 4
  local L=() M=()
  [ "$np" -gt 1 ] && L=("$MPIRUN" --oversubscribe -np "$np") M=(${MULTI[@]+"${MULTI[@]}"})
  "${L[@]}" "$CDDP" train "${ARGS[@]}" --train "$W/$data.h5" --batch "$b" --max-steps $K "$@" \
    ${M[@]+"${M[@]}"} --checkpoint-dir "$W/$name" >"$W/$name.log" 2>&1
  local rc=$?
  if [ $rc != 0 ]; then
    fail "$name: exit $rc"
    tail -5 "$W/$name.log"
    return 1
  fi
  if [ "$np" -gt 1 ] && ! grep -q "replica check: parameters bit-identical on all $np ranks" "$W/$name.log"; then
    fail "$name: no replica check line"
    return 1
  fi
}
same() { # NAME REF [STEP]
  local out
  if out=$("$CMP" "$(ck "$2" "${3:-$K}")" "$(ck "$1" "${3:-$K}")" $TOL 2>&1); then
    echo "ok: $1 vs $2: $out (tol $TOL)"
  else fail "$1 vs $2: $out (tol $TOL)"; fi
}

recall() { grep -o 'last [0-9.]*' "$W/$1.log" | tail -1; }
if [ "$MODEL" = two_tower ]; then
  ADA=(--optimizer adagrad --eps 1e-2) # 1e-3: 1.6e-5 already between 1 and 2 replicated ranks
  run ref 1 $G d || exit 1
  run ref_ada 1 $G d "${ADA[@]}" || exit 1
  plans() { # PREFIX: the plans on 2 and 4 ranks with the current MULTI
    local p=$1
    for N in 2 4; do
      B=$((G / N))
      run ${p}${N}_table $N $B d --embedding-sharding table && same ${p}${N}_table ref
      run ${p}${N}_row $N $B d --embedding-sharding row && same ${p}${N}_row ref
      run ${p}${N}_mixed $N $B d --embedding-plan user_tower.user_emb=row,user_tower.hist_emb=table:1,item_tower.item_emb=table:0 &&
        same ${p}${N}_mixed ref
      run ${p}${N}_auto $N $B d --embedding-sharding auto && same ${p}${N}_auto ref
      run ${p}${N}_row_ada $N $B d --embedding-sharding row "${ADA[@]}" && same ${p}${N}_row_ada ref_ada
      for c in table row mixed auto; do
        [ "$(recall ${p}${N}_$c)" = "$(recall ref)" ] ||
          fail "${p}${N}_$c: recall '$(recall ${p}${N}_$c)' != '$(recall ref)'"
      done
    done
  }
  plans t
  if [ -n "$ALSO_MPI" ]; then # on the device: the same with the MPI backend
    MULTI=(--comm mpi)
    plans m
    MULTI=("${COMM[@]}")
  fi
  # split bags: every sample sends each other rank 8/N ids (one fragment, one
  # end) and gets one vector back; its fragment's gradient goes back
  PY=""
  for p in ${CDDP_PYTHON:-} python3 /usr/bin/python3; do
    if "$p" -c 'import h5py, numpy' 2>/dev/null; then PY=$p; break; fi
  done
  [ -n "$PY" ] || { fail "no python3 with h5py (scripts/install-deps.sh installs python3-h5py)"; exit 1; }
  "$PY" - "$W/split.h5" <<'PY' || exit 1
import sys, h5py, numpy as np
rng = np.random.default_rng(5)
n, items = 640, 120
hist = np.concatenate([rng.integers(q * 30, q * 30 + 30, (n, 2)) for q in range(4)], axis=1)
hist = rng.permuted(hist, axis=1).astype(np.int32)
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["schema"] = "cddp.twotower.v1"
    f.attrs["num_users"] = 100; f.attrs["num_items"] = items; f.attrs["num_cats"] = 8
    f["user_id"] = rng.integers(0, 100, n).astype(np.int32)
    f["user_hist"] = hist
    f["item_id"] = rng.integers(0, items, n).astype(np.int32)
    f["item_cat"] = rng.integers(0, 8, n).astype(np.int32)
PY
  E=8 # --emb-dim: the vectors' floats
  SPLIT=(--emb-dim $E --eval "" --embedding-plan user_tower.hist_emb=row) # no evaluation: its ids differ
  run ref_split 1 $G split --emb-dim $E --eval "" || exit 1
  for N in 2 4; do
    B=$((G / N))
    run t${N}_split $N $B split "${SPLIT[@]}" --log-every 1 --metrics-out "$W/t${N}_split.jsonl" &&
      same t${N}_split ref_split
    # per other rank: 2 counts (ids, fragments), B*(8/N) ids + B ends, B vectors, B gradients
    want=$(( (N - 1) * (2 * 4 + 4 * B * (8 / N + 1) + 2 * 4 * E * B) ))
    per_id=$(( (N - 1) * (4 + 4 * B * (8 / N) + 2 * 4 * E * B * (8 / N)) ))
    got=$(grep -o '"a2a_bytes": *[0-9.e+]*' "$W/t${N}_split.jsonl" | sed 's/.*: *//' | sort -u)
    if [ -n "$got" ] && echo "$got" | awk -v w="$want" '$1 != w { bad = 1 } END { exit bad }'; then echo "ok: t${N}_split: a2a_bytes $got per step (one vector per id: $per_id)"
    else fail "t${N}_split: a2a_bytes '$got', expected $want every step (one vector per id: $per_id)"; fi
  done
  run tctl 2 $((G / 4)) split "${SPLIT[@]}" &&
    if out=$("$CMP" "$(ck ref_split $K)" "$(ck tctl $K)" $TOL --expect-differ); then
      echo "ok: negative control differs: $out"
    else fail "negative control does not differ: $out"; fi
  if [ -n "$CUDA" ]; then
    CUEMU_SEED=2 run t4_split_seed 4 $((G / 4)) split "${SPLIT[@]}" &&
      TOL=0 same t4_split_seed t4_split
  fi
  if [ -n "$ALSO_MPI" ]; then
    MULTI=(--comm mpi)
    run m4_split 4 $((G / 4)) split "${SPLIT[@]}" && same m4_split ref_split
    MULTI=("${COMM[@]}")
  fi
  echo "$fails failure(s)"
  [ $fails = 0 ]
  exit
fi
run ref 1 $G d || exit 1
run ref_ada 1 $G d "${ADA[@]}" || exit 1
run ref_one 1 $G one || exit 1
run ref_clip 1 $G d --clip-grad-norm 0.01 || exit 1
run ref_amp_fp16 1 $G d --precision fp16 || exit 1
run ref_amp_bf16 1 $G d --precision bf16 || exit 1
MIXED=emb_l.0=row,emb_l.3=row,emb_l.8=replicated,emb_l.5=table:0,emb_l.6=table:0
dlrm_plans() { # PREFIX N: the plans, SGD and Adagrad, on N ranks with the current MULTI
  local p=$1$2 N=$2 B=$((G / $2))
  run ${p}_table $N $B d --embedding-sharding table && same ${p}_table ref
  run ${p}_row $N $B d --embedding-sharding row --embedding-plan emb_l.8=table:1 && same ${p}_row ref
  run ${p}_mixed $N $B d --embedding-sharding table --embedding-plan $MIXED && same ${p}_mixed ref
  run ${p}_auto $N $B d --embedding-sharding auto && same ${p}_auto ref
  run ${p}_table_ada $N $B d --embedding-sharding table "${ADA[@]}" && same ${p}_table_ada ref_ada
  run ${p}_row_ada $N $B d --embedding-sharding row --embedding-plan emb_l.8=replicated "${ADA[@]}" &&
    same ${p}_row_ada ref_ada
}
for N in 2 4; do
  B=$((G / N))
  dlrm_plans n $N
  # every id of table 0 on one owner; all tables on the last rank (the others hold no rows)
  run n${N}_one_row $N $B one --embedding-sharding row && same n${N}_one_row ref_one
  # gradient accumulation: N ranks x B/2 x 2 micro-steps (owners keep both micro-steps' rows)
  run n${N}_accum $N $((B / 2)) d --embedding-sharding row --embedding-plan emb_l.8=table:0 \
    --grad-accum 2 && same n${N}_accum ref
  run n${N}_accum_ada $N $((B / 2)) d --embedding-sharding table --grad-accum 2 "${ADA[@]}" &&
    same n${N}_accum_ada ref_ada
  # global-norm clipping: the shards' part of the norm is summed over the ranks
  run n${N}_clip $N $B d --embedding-sharding row --embedding-plan emb_l.8=table:1 \
    --clip-grad-norm 0.01 && same n${N}_clip ref_clip
  # half precision on the wire: gradients (--grad-compress, dense buckets too), vectors (AMP)
  for g in fp16 bf16; do
    u=$([ $g = fp16 ] && echo 2^-11 || echo 2^-8)
    tol=$(awk -v n=$N "BEGIN { print 2 * (n + 1) * $u }")
    run n${N}_$g $N $B d --embedding-sharding row --embedding-plan emb_l.8=table --grad-compress $g &&
      TOL=$tol same n${N}_$g ref
    tol=$(awk "BEGIN { print 2 * $u }")
    run n${N}_amp_$g $N $B d --embedding-sharding table --precision $g &&
      TOL=$tol same n${N}_amp_$g ref_amp_$g
  done
  ALL=$(for t in $(seq 0 25); do printf 'emb_l.%d=table:%d,' $t $((N - 1)); done)
  run n${N}_one_rank $N $B one --embedding-plan "$ALL" --embedding-sharding table &&
    same n${N}_one_rank ref_one
done

if [ -n "$ALSO_MPI" ]; then
  MULTI=(--comm mpi)
  dlrm_plans m 2
  dlrm_plans m 4
  run m2_amp_fp16 2 $((G / 2)) d --embedding-sharding table --precision fp16 &&
    TOL=$(awk 'BEGIN { print 2 * 2^-11 }') same m2_amp_fp16 ref_amp_fp16
  run m4_amp_bf16 4 $((G / 4)) d --embedding-sharding row --embedding-plan emb_l.8=table:1 \
    --precision bf16 && TOL=$(awk 'BEGIN { print 2 * 2^-8 }') same m4_amp_bf16 ref_amp_bf16
  MULTI=("${COMM[@]}")
fi

# Resume on another world size and plan: 4 ranks row-wise, 5 steps; then 2 ranks table-wise.
ROW4=(--embedding-sharding row --embedding-plan emb_l.8=table:2)
run ref2_table 2 $((G / 2)) d --embedding-sharding table "${ADA[@]}"
"$MPIRUN" --oversubscribe -np 4 "$CDDP" train "${ARGS[@]}" --train "$W/d.h5" --batch $((G / 4)) \
  --max-steps $K --stop-after 5 "${ROW4[@]}" "${ADA[@]}" ${MULTI[@]+"${MULTI[@]}"} \
  --checkpoint-dir "$W/resumed" \
  >"$W/stop.log" 2>&1 || fail "4-rank run to step 5: exit $?"
[ "$(ls "$W/resumed" | grep -c 'ckpt-0000000005-shard-')" = 4 ] || fail "expected 4 shard files"
run resumed 2 $((G / 2)) d --embedding-sharding table "${ADA[@]}" --resume auto &&
  grep -q "written by 4 ranks, continuing on 2" "$W/resumed.log" && same resumed ref2_table

# Negative control: 2 sharded ranks x B/2 see half the samples of the reference.
run ctl 2 $((G / 4)) d --embedding-sharding table &&
  if out=$("$CMP" "$(ck ref $K)" "$(ck ctl $K)" $TOL --expect-differ); then
    echo "ok: negative control differs: $out"
  else fail "negative control does not differ: $out"; fi
echo "$fails failure(s)"
[ $fails = 0 ]

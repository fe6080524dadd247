#!/usr/bin/env bash
# End-to-end checks of `cddp train` and `cddp eval` on small generated data:
#  - each model trains (1 rank) and evaluates; two ranks train dlrm/two_tower;
#  - resume is bit-exact: k steps (--stop-after) + --resume to 2k gives the
#    same parameters as 2k straight, on 1 rank (vit fp16 + AdamW + cosine,
#    dlrm + Adagrad sparse rows, two_tower) and 2 ranks (dlrm, vit, two_tower
#    with gathered negatives and without: the logQ estimator state is per
#    rank in the checkpoint);
#  - `cddp eval --checkpoint` prints the same metrics as the training-time
#    evaluation; a diverging run exits 4 naming the step; usage errors exit 2.
# usage: test_cli.sh CDDP CKPT_HASH MPIRUN
set -u
CDDP=$1 HASH=$2 MPIRUN=$3
W=$(mktemp -d /tmp/cddp_train_cli.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
COMMON=(--threads 1 --progress plain --log-every 10)
MPI=("$MPIRUN" --oversubscribe -np 2)

"$CDDP" gen images "$W/img.h5" --rows 600 --seed 1 --height 8 --width 8 --quiet || exit 1
"$CDDP" gen ctr "$W/ctr.h5" --rows 1200 --seed 2 --table-size 40 --quiet || exit 1
"$CDDP" gen twotower "$W/tt.h5" --rows 1200 --seed 3 --num-users 100 --num-items 120 \
  --num-cats 8 --hist-len 4 --quiet || exit 1

VIT=(--model vit --variant tiny --train "$W/img.h5" --batch 16)
DLRM=(--model dlrm --variant tiny --train "$W/ctr.h5" --batch 32)
TT=(--model two_tower --variant tiny --train "$W/tt.h5" --batch 32)

# ---- each model end to end ----------------------------------------------------
run_e2e() { # name metric-regex args...
  local name=$1 re=$2
  shift 2
  if out=$("$@" 2>&1) && grep -Eq "$re" <<<"$out" && grep -q "^done:" <<<"$out"; then
    ok "$name"
  else
    fail "$name"
    echo "$out" | tail -15
  fi
}
run_e2e "vit 1 rank" "eval step .*accuracy" "$CDDP" train "${VIT[@]}" --eval "$W/img.h5" \
  --optimizer adamw --lr 0.003 --epochs 1 "${COMMON[@]}"
run_e2e "dlrm 1 rank" "eval step .*auc" "$CDDP" train "${DLRM[@]}" --eval "$W/ctr.h5" --lr 0.1 \
  "${COMMON[@]}"
run_e2e "two_tower 1 rank" "eval step .*recall@10" "$CDDP" train "${TT[@]}" --eval "$W/tt.h5" \
  --optimizer adamw --lr 0.01 --recall-k 10 "${COMMON[@]}"
run_e2e "dlrm 2 ranks" "eval step .*auc" "${MPI[@]}" "$CDDP" train "${DLRM[@]}" \
  --eval "$W/ctr.h5" --lr 0.1 "${COMMON[@]}"
run_e2e "two_tower 2 ranks gathered negatives" "eval step .*recall@50" "${MPI[@]}" "$CDDP" train \
  "${TT[@]}" --eval "$W/tt.h5" --gather-negatives --optimizer adamw --lr 0.01 "${COMMON[@]}"

# ---- resume bit-exactness ---------------------------------------------------------
resume_check() { # name launcher-count k args...
  local name=$1 np=$2 k=$3
  shift 3
  local L=()
  [ "$np" = 2 ] && L=("${MPI[@]}")
  local n2=$((2 * k)) d=$W/r_${name// /_}
  "${L[@]}" "$CDDP" train "$@" --max-steps $n2 --checkpoint-dir "$d/a" "${COMMON[@]}" --quiet \
    >/dev/null 2>"$d.err.a" || { fail "$name: straight run"; cat "$d.err.a"; return; }
  "${L[@]}" "$CDDP" train "$@" --max-steps $n2 --stop-after $k --checkpoint-dir "$d/b" \
    "${COMMON[@]}" --quiet >/dev/null 2>"$d.err.b" || { fail "$name: first half"; cat "$d.err.b"; return; }
  "${L[@]}" "$CDDP" train "$@" --max-steps $n2 --resume auto --checkpoint-dir "$d/b" \
    "${COMMON[@]}" --quiet >/dev/null 2>"$d.err.c" || { fail "$name: resumed half"; cat "$d.err.c"; return; }
  local f=$(printf 'ckpt-%010d.h5' $n2)
  local ha=$("$HASH" "$d/a/$f") hb=$("$HASH" "$d/b/$f") hk=$("$HASH" "$d/b/$(printf 'ckpt-%010d.h5' $k)")
  if [ -n "$ha" ] && [ "$ha" = "$hb" ] && [ "$ha" != "$hk" ]; then ok "$name: resume bit-exact ($ha)"
  else fail "$name: resume differs: straight $ha resumed $hb (at k: $hk)"; fi
}
# k = 13 with 37 steps per epoch for vit (600/16): mid-epoch resume; dlrm crosses an epoch.
resume_check "vit fp16 adamw cosine" 1 13 "${VIT[@]}" --precision fp16 --optimizer adamw \
  --lr 0.003 --schedule cosine --warmup-steps 5 --weight-decay 0.05 --clip-grad-norm 1
resume_check "dlrm adagrad accum" 1 25 "${DLRM[@]}" --optimizer adagrad --lr 0.05 --grad-accum 2
resume_check "dlrm sgd 2 ranks" 2 12 "${DLRM[@]}" --lr 0.1 --momentum 0.9
resume_check "vit bf16 2 ranks" 2 9 "${VIT[@]}" --precision bf16 --optimizer adamw --lr 0.003
# two_tower: parameters depend on the logQ estimate (A, B, t), which the
# checkpoint must carry (/model_state/extra) for a bit-exact resume.
resume_check "two_tower adamw" 1 13 "${TT[@]}" --optimizer adamw --lr 0.01
resume_check "two_tower 2 ranks gathered negatives" 2 9 "${TT[@]}" --gather-negatives \
  --optimizer adamw --lr 0.01
resume_check "two_tower 2 ranks local negatives" 2 9 "${TT[@]}" --optimizer adamw --lr 0.01

# ---- cddp eval reproduces the training-time evaluation ----------------------------
# vit_epoch ends at an epoch boundary (600 rows / batch 16 = 37 steps): the line
# names the epoch that ended, not the one the checkpoint would resume in.
for m in vit dlrm vit_epoch; do
  case $m in
    vit) A=("${VIT[@]}" --eval "$W/img.h5" --max-steps 20); D=$W/img.h5; S=20 ;;
    dlrm) A=("${DLRM[@]}" --eval "$W/ctr.h5" --max-steps 20); D=$W/ctr.h5; S=20 ;;
    vit_epoch) A=("${VIT[@]}" --eval "$W/img.h5" --epochs 1); D=$W/img.h5; S=37 ;;
  esac
  out=$("$CDDP" train "${A[@]}" --checkpoint-dir "$W/ev_$m" "${COMMON[@]}" 2>&1)
  want=$(grep "^eval step" <<<"$out" | tail -1 | sed 's/ ([0-9]* samples.*//')
  printf -v ck "%s/ev_%s/ckpt-%010d.h5" "$W" "$m" "$S"
  got=$("$CDDP" eval --checkpoint "$ck" --data "$D" --threads 1 2>&1 |
    grep "^eval step" | sed 's/ ([0-9]* samples.*//')
  if [ -n "$want" ] && [ "$want" = "$got" ]; then ok "cddp eval $m: $got"
  else fail "cddp eval $m: training '$want' vs eval '$got'"; fi
done

# ---- divergence and usage errors ------------------------------------------------
out=$("$CDDP" train "${VIT[@]}" --lr 1e30 --log-every 1 --max-steps 20 --threads 1 --quiet 2>&1)
rc=$?
if [ $rc = 4 ] && grep -Eq "diverged: non-finite loss.* at step [0-9]+ .*first non-finite parameter: " <<<"$out"; then ok "divergence exit 4"
else fail "divergence: rc $rc: $out"; fi
out=$("$CDDP" train "${VIT[@]}" --no-such-option 3 2>&1)
rc=$?
if [ $rc = 2 ] && grep -q -- "--no-such-option" <<<"$out"; then ok "unknown option exit 2"
else fail "unknown option: rc $rc: $out"; fi
out=$("$CDDP" train --model vit --train "$W/ctr.h5" --threads 1 2>&1)
rc=$?
if [ $rc = 2 ]; then ok "schema/model mismatch exit 2"; else fail "mismatch: rc $rc: $out"; fi
"$CDDP" train --help | grep -q -- "--grad-accum N .*\[default: 1\]" && ok "help lists defaults" ||
  fail "help"

echo "$fails failure(s)"
[ $fails = 0 ]

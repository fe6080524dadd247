#!/usr/bin/env bash
# Divergence ends the run with exit 4 naming the step and what went wrong, for
# every model and precision: a non-finite loss, non-finite parameters (dlrm's
# loss stays finite while its weights become NaN), non-finite optimizer state
# (Adagrad/AdamW: the weights stay finite), an fp16 loss scale that collapses
# (every step skipped); 1 and 2 ranks. A healthy run is not flagged.
# usage: test_diverge.sh CDDP MPIRUN
set -u
CDDP=$1 MPIRUN=$2
W=$(mktemp -d /tmp/cddp_diverge.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
"$CDDP" gen ctr "$W/ctr.h5" --rows 2000 --seed 2 --table-size 40 --quiet || exit 1
"$CDDP" gen images "$W/img.h5" --rows 600 --seed 1 --height 8 --width 8 --quiet || exit 1
"$CDDP" gen twotower "$W/tt.h5" --rows 1200 --seed 3 --num-users 100 --num-items 120 \
  --num-cats 8 --hist-len 4 --quiet || exit 1
DLRM=(--model dlrm --variant tiny --train "$W/ctr.h5" --batch 64 --lr 1e6)
VIT=(--model vit --variant tiny --train "$W/img.h5" --batch 16 --lr 1e6)
TT=(--model two_tower --variant tiny --train "$W/tt.h5" --batch 32 --lr 1e20)
COMMON=(--max-steps 60 --log-every 10 --threads 1)

# case NAME WANT_RC REGEX cddp-args...
case_() {
  local name=$1 want=$2 re=$3
  shift 3
  local L=()
  [ "$1" = np2 ] && { L=("$MPIRUN" --oversubscribe -np 2); shift; }
  local out
  out=$("${L[@]}" "$CDDP" train "$@" "${COMMON[@]}" 2>&1)
  local rc=$?
  if [ $rc = "$want" ] && grep -Eq -- "$re" <<<"$out"; then
    echo "ok: $name: $(grep -Eo -- "$re" <<<"$out" | head -n 1)"
  else
    echo "FAIL: $name: rc $rc (want $want), no /$re/ in:"; grep -v "^ *$" <<<"$out" | head -n 8
    fails=$((fails + 1))
  fi
}
P="non-finite parameters or optimizer state at step [0-9]+ .*first non-finite parameter: [a-z_.0-9]+weight"
S="first non-finite optimizer state: [a-z_]+ of [a-z_.0-9]+"
case_ "dlrm fp32" 4 "$P" "${DLRM[@]}"
case_ "dlrm bf16" 4 "$P" "${DLRM[@]}" --precision bf16
case_ "dlrm fp16" 4 "fp16 loss scale .* fell below 2\^-24 .* at step [0-9]+" "${DLRM[@]}" --precision fp16
case_ "dlrm adagrad" 4 "$S" "${DLRM[@]}" --optimizer adagrad
case_ "dlrm adamw" 4 "$S" "${DLRM[@]}" --optimizer adamw
case_ "dlrm 2 ranks" 4 "rank 0: .*$P" np2 "${DLRM[@]}" --batch 32
case_ "vit fp32" 4 "non-finite loss .* at step 10 .*first non-finite parameter: patch_embed.proj.weight" "${VIT[@]}"
case_ "vit fp16" 4 "fp16 loss scale .* fell below 2\^-24" "${VIT[@]}" --precision fp16
case_ "two_tower" 4 "at step 10 .*first non-finite parameter: user_tower" "${TT[@]}"
case_ "two_tower adamw bf16" 4 "at step 10 .*first non-finite" "${TT[@]}" --optimizer adamw --precision bf16
case_ "healthy dlrm fp16" 0 "^done:" "${DLRM[@]}" --precision fp16 --lr 0.1 --progress plain

echo "$fails failure(s)"
[ $fails = 0 ]

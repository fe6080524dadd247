#!/usr/bin/env bash
# The GPU path end to end on the CPU emulation of the CUDA backend (issue 12,
# part 2): `cddp train --device cuda` of one model (variant tiny) against
# `--device cpu`, on 1 rank and on 2 ranks under --comm nccl and --comm mpi,
# in fp32, bf16 and fp16, 20 optimizer steps each:
#  - loss curve: the per-step losses (--log-every 1) of cuda and cpu at the
#    same precision: max |diff| <= 1e-3 in fp32; in bf16/fp16 the mean |diff|
#    over the 20 steps within the CPU half-precision test's tolerance
#    (tests/train/test_amp_curves.sh: vit 0.35, dlrm 0.02; two_tower, which
#    has none there, dlrm's) and the max within twice that;
#  - DDP on the emulated GPU, --comm nccl and --comm mpi: 2 ranks x B/2 end
#    with the same parameters (ckpt_compare: max |a-b| / max |b| per tensor)
#    as 2 ranks on the cpu and as 1 rank x B on the emulated GPU, within 1e-5
#    in fp32 (the CPU's tolerance, tests/cli/equiv.sh) and about one ulp of
#    the half type in bf16/fp16 (HALF_EQ_TOL: the half copy of the weights
#    rounds differently once fp32 summation orders differ); in fp16 the 1-rank comparison needs the same
#    loss-scale sequence (said when it differs: per-rank gradient scaling can
#    overflow at another step). Every 2-rank run checks that its replicas are
#    bit-identical;
#  - checkpoints: a cuda run stopped at step 10 and resumed to 20 ends bit for
#    bit where the straight run ends (fp16: loss scaler state too), and
#    `cddp eval --device cpu` loads the cuda checkpoint and reports the same
#    metric as `cddp eval --device cuda` within 1e-4.
# Measured differences are printed on every "ok" line. CDDP_EQUIV_RANKS=1
# leaves out the 2-rank runs (a real machine with one GPU, scripts/gpu-check.sh).
# Mode gpus: the GPU of each rank is local rank % visible GPUs, named on the
# start-up line: 2 ranks on a host with 4 emulated GPUs use GPUs 0 and 1; with
# one visible GPU each (as a per-rank CUDA_VISIBLE_DEVICES leaves it) both use
# their GPU 0, under nccl and mpi (rank 1 died asking for GPU 1 before).
# usage: emu_train.sh CDDP CKPT_COMPARE CKPT_HASH MPIRUN dlrm|two_tower|vit|gpus
set -u
CDDP=$1 CMP=$2 HASH=$3 MPIRUN=$4 MODEL=$5
W=$(mktemp -d /tmp/cddp_emu_train.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export CDDP_CHECK_REPLICAS=1
K=20 G=32
declare -A HALF_EQ_TOL=([bf16]=4e-3 [fp16]=1e-3) # about one ulp: 2^-8, 2 x 2^-11
case $MODEL in
dlrm)
  "$CDDP" gen ctr "$W/d.h5" --rows 1200 --seed 2 --table-size 40 --quiet || exit 1
  ARGS=(--model dlrm --variant tiny --lr 0.1 --momentum 0.9)
  HALF_TOL=0.02 ;;
two_tower)
  "$CDDP" gen twotower "$W/d.h5" --rows 1200 --seed 3 --num-users 100 --num-items 120 \
    --num-cats 8 --hist-len 4 --quiet || exit 1
  ARGS=(--model two_tower --variant tiny --gather-negatives --lr 0.05)
  HALF_TOL=0.02 ;;
vit)
  "$CDDP" gen images "$W/d.h5" --rows 600 --seed 1 --height 8 --width 8 --quiet || exit 1
  ARGS=(--model vit --variant tiny --lr 0.05 --momentum 0.9 --weight-decay 0.01)
  HALF_TOL=0.35 ;;
gpus)
  "$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
  for c in nccl mpi; do
    for n in 4 1; do
      want="GPU by rank $([ $n = 4 ] && echo 0,1 || echo 0,0)"
      CUEMU_DEVICE_COUNT=$n "$MPIRUN" --oversubscribe -np 2 -x CUEMU_DEVICE_COUNT "$CDDP" train \
        --model dlrm --variant tiny --train "$W/d.h5" --device cuda --comm $c --max-steps 2 \
        --batch 16 --threads 1 >"$W/g.log" 2>&1
      rc=$?
      if [ $rc = 0 ] && grep -q "device cuda, $want," "$W/g.log"; then
        echo "ok: $c, $n visible GPU(s): $want"
      else fail "$c, $n visible GPU(s): exit $rc, want '$want'"; grep 'cddp\|train:' "$W/g.log" | head -3; fi
    done
  done
  echo "$fails failure(s)"
  [ $fails = 0 ]
  exit ;;
*) echo "unknown model $MODEL"; exit 2 ;;
esac
COMMON=(--train "$W/d.h5" --seed 7 --max-steps $K --threads 1 --progress plain --log-every 1)
CK=$(printf 'ckpt-%010d.h5' $K)

# run NAME NP ARGS...: trains into $W/NAME (checkpoint at the end, losses in NAME.jsonl).
run() {
  local name=$1 np=$2
  shift 2
  local L=()
  [ "$np" -gt 1 ] && L=("$MPIRUN" --oversubscribe -np "$np")
  "${L[@]}" "$CDDP" train "${ARGS[@]}" "${COMMON[@]}" "$@" --checkpoint-dir "$W/$name" \
    --metrics-out "$W/$name.jsonl" >"$W/$name.log" 2>&1
  local rc=$?
  if [ $rc != 0 ]; then
    fail "$MODEL $name: exit $rc"
    grep -v '^\[\|^--\|^$' "$W/$name.log" | tail -5
    return 1
  fi
  if [ "$np" -gt 1 ] && ! grep -q "replica check: parameters bit-identical on all $np ranks" "$W/$name.log"
  then
    fail "$MODEL $name: no replica check line"
    return 1
  fi
}
losses() { grep '"type":"train"' "$W/$1.jsonl" | sed 's/.*"loss":\([^,]*\),.*/\1/'; }

# curve A B MAXTOL MEANTOL: per-step losses of runs A and B.
curve() {
  local r
  r=$(paste <(losses "$1") <(losses "$2") | awk -v K=$K -v mx="$3" -v mt="$4" '
    NF == 2 { n++; d = $1 - $2; if (d < 0) d = -d; s += d; if (d > m) m = d }
    END {
      if (n != K) { printf "FAIL %d logged steps, expected %d", n, K; exit }
      printf "%s max |diff| %.2e (tol %g), mean %.2e (tol %g)",
        (m <= mx && s / n <= mt) ? "ok" : "FAIL", m, mx, s / n, mt
    }')
  case $r in
  ok*) echo "ok: $MODEL loss curve $1 vs $2: ${r#ok }" ;;
  *) fail "$MODEL loss curve $1 vs $2: ${r#FAIL }" ;;
  esac
}
same() { # NAME REF TOL
  local out
  if out=$("$CMP" "$W/$2/$CK" "$W/$1/$CK" "$3" 2>&1); then echo "ok: $MODEL $1 vs $2: $out (tol $3)"
  else fail "$MODEL $1 vs $2: $out (tol $3)"; fi
}

scales() { grep -o '"loss_scale":[0-9.]*' "$W/$1.jsonl" | tr '\n' ' '; }
for p in fp32 bf16 fp16; do
  P=(--precision $p)
  run cpu_$p 1 --device cpu --batch $G "${P[@]}" || continue
  run cuda_$p 1 --device cuda --batch $G "${P[@]}" || continue
  if [ $p = fp32 ]; then
    curve cuda_$p cpu_$p 1e-3 1e-3
    tol=1e-5
  else
    curve cuda_$p cpu_$p "$(awk -v t=$HALF_TOL 'BEGIN { print 2 * t }')" $HALF_TOL
    tol=${HALF_EQ_TOL[$p]}
  fi
  [ "${CDDP_EQUIV_RANKS:-2}" -ge 2 ] || continue # scripts/gpu-check.sh on one GPU
  run cpu2_$p 2 --device cpu --batch $((G / 2)) "${P[@]}" || continue
  for c in nccl mpi; do
    run ${c}2_$p 2 --device cuda --comm $c --batch $((G / 2)) "${P[@]}" || continue
    same ${c}2_$p cpu2_$p $tol
    # fp16: each rank scales its own gradients by 1/local batch, so an
    # overflow (a skipped step) can come at another step than on 1 rank.
    if [ "$(scales ${c}2_$p)" = "$(scales cuda_$p)" ]; then same ${c}2_$p cuda_$p $tol
    else echo "ok: $MODEL ${c}2_$p vs cuda_$p: not compared, the loss scaler skipped other steps"; fi
  done
done

# Resume on the emulated GPU: stop at K/2, resume to K, compare with the
# straight run bit for bit (fp16: the loss scaler's state travels too).
resume() { # NAME STRAIGHT ARGS...
  local name=$1 ref=$2
  shift 2
  "$CDDP" train "${ARGS[@]}" "${COMMON[@]}" "$@" --stop-after $((K / 2)) \
    --checkpoint-dir "$W/$name" --quiet >"$W/$name.log" 2>&1 &&
    "$CDDP" train "${ARGS[@]}" "${COMMON[@]}" "$@" --resume auto --checkpoint-dir "$W/$name" \
      --quiet >>"$W/$name.log" 2>&1
  local rc=$?
  [ $rc = 0 ] || { fail "$MODEL $name: exit $rc"; tail -5 "$W/$name.log"; return; }
  local ha hb hk
  ha=$("$HASH" "$W/$ref/$CK") hb=$("$HASH" "$W/$name/$CK")
  hk=$("$HASH" "$W/$name/$(printf 'ckpt-%010d.h5' $((K / 2)))")
  if [ -n "$ha" ] && [ "$ha" = "$hb" ] && [ "$ha" != "$hk" ]; then
    echo "ok: $MODEL $name: resumed on the emulated GPU, bit-exact ($ha)"
  else fail "$MODEL $name: straight $ha, resumed $hb (at step $((K / 2)): $hk)"; fi
}
[ -f "$W/cuda_fp32/$CK" ] && resume resume_fp32 cuda_fp32 --device cuda --batch $G --precision fp32
[ -f "$W/cuda_fp16/$CK" ] && resume resume_fp16 cuda_fp16 --device cuda --batch $G --precision fp16

# The checkpoint written on the emulated GPU loads on the CPU.
if [ -f "$W/cuda_fp32/$CK" ]; then
  metric() { # DEVICE: the evaluation metric line of cddp eval
    "$CDDP" eval --checkpoint "$W/cuda_fp32/$CK" --data "$W/d.h5" --device "$1" --threads 1 \
      >"$W/eval_$1.log" 2>&1 || { fail "$MODEL eval --device $1 of the cuda checkpoint"; cat "$W/eval_$1.log"; return 1; }
    grep -o '\(auc\|accuracy\|recall@[0-9]*\) [0-9.]*' "$W/eval_$1.log" | head -1
  }
  a=$(metric cpu) b=$(metric cuda)
  if [ -n "$a" ] && awk -v a="${a##* }" -v b="${b##* }" 'BEGIN { d = a - b; exit !(d <= 1e-4 && d >= -1e-4) }'
  then echo "ok: $MODEL cuda checkpoint evaluated on cpu: $a, on cuda: $b"
  else fail "$MODEL cuda checkpoint evaluated on cpu: '$a', on cuda: '$b'"; fi
fi
echo "$fails failure(s)"
[ $fails = 0 ]

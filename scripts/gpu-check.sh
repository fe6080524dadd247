#!/usr/bin/env bash
# The one command to run when a GPU machine is lent (docs/cuda.md, "The GPU
# check"): about 10 minutes on one H100/H200, no internet needed.
#
#   scripts/gpu-check.sh [OUTDIR]              real GPU: build/ (built here with
#                                              nvcc if missing) or BUILD=DIR
#   scripts/gpu-check.sh --emulated [OUTDIR]   dry run on the CPU emulation
#                                              (build-emu/, scripts/build-emu.sh):
#                                              what needs a GPU is skipped, and said
#
# Steps, each under a time limit, each recorded as pass / fail / skipped:
#  1. nvidia-smi: the GPUs (their count N decides step 5)
#  2. cuda_parity: every op against the CPU backend (cuDNN attention included)
#  3. compute-sanitizer memcheck, racecheck, synccheck on cuda_parity
#  4. 1-GPU training equivalence with the CPU, dlrm / two_tower / vit
#     (tests/cuda/emu_train.sh with 1 rank: loss curves fp32/bf16/fp16,
#     bit-exact resume, checkpoint evaluated on the CPU)
#  5. NCCL: world size 1 is in step 4 (--device cuda uses nccl); with N >= 2
#     GPUs the 2-rank nccl/mpi equivalence of emu_train.sh and an N-rank
#     replica check; sharded embeddings, dlrm and two_tower
#     (tests/cli/shard_equiv.sh: 2 and 4 ranks sharded against 1 rank
#     replicated, split bags, a rerun bit for bit), --comm nccl with N >= 4,
#     else ranks share the GPUs under --comm mpi (NCCL needs one GPU per rank)
#  6. step benchmark against PyTorch on cuda (bench/pytorch/bench_step.py
#     --device cuda): dlrm kaggle bf16 and deit-small bf16, samples/s of both
#     and cddp's ratio
# Writes OUTDIR/gpu-check.json (one object: machine, steps, figures) and
# OUTDIR/gpu-check.txt (readable summary), logs in OUTDIR/logs/.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
EMU=0
if [ "${1:-}" = --emulated ]; then EMU=1; shift; fi
OUT=${1:-gpu-check-out}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
T0=$(date +%s)

if [ $EMU = 1 ]; then
  B=${BUILD:-$here/build-emu}
  [ -x "$B/cddp" ] || "$here/scripts/build-emu.sh" >"$OUT/logs/build.log" 2>&1 ||
    { echo "gpu-check: build-emu failed, see $OUT/logs/build.log"; exit 1; }
else
  B=${BUILD:-$here/build}
  if [ ! -x "$B/tests/cuda/cuda_parity" ]; then
    cmake -S "$here" -B "$B" -DCMAKE_BUILD_TYPE=Release -DCDDP_CUDA=ON >"$OUT/logs/build.log" 2>&1 &&
      cmake --build "$B" -j "$(nproc)" >>"$OUT/logs/build.log" 2>&1 ||
      { echo "gpu-check: build failed, see $OUT/logs/build.log"; exit 1; }
  fi
fi
CDDP=$B/cddp PARITY=$B/tests/cuda/cuda_parity
CMP=$B/tests/cli/ckpt_compare HASH=$B/tests/train/train_ckpt_hash
MPIRUN=${MPIRUN:-mpirun}

steps=()   # JSON objects
summary=() # lines
# record NAME STATUS SECONDS NOTE
record() {
  local note=${4//\\/\\\\}
  note=${note//\"/\\\"}
  steps+=("{\"name\":\"$1\",\"status\":\"$2\",\"seconds\":$3,\"note\":\"$note\"}")
  summary+=("$(printf '%-28s %-8s %5ss  %s' "$1" "$2" "$3" "$4")")
  echo "gpu-check: $1: $2 ($3 s) $4"
}
skip() { record "$1" skipped 0 "$2"; }
# step NAME LIMIT_S CMD...: runs CMD with a time limit, log in logs/NAME.log
step() {
  local name=$1 limit=$2
  shift 2
  local t=$(date +%s)
  timeout "$limit" "$@" >"$OUT/logs/$name.log" 2>&1
  local rc=$? dt=$(($(date +%s) - t))
  local last
  last=$(grep -E 'FAIL|failure|PASSED|FAILED|ERROR SUMMARY|error' "$OUT/logs/$name.log" | tail -1)
  if [ $rc = 0 ]; then record "$name" pass $dt "$last"
  elif [ $rc = 124 ]; then record "$name" fail $dt "timed out after $limit s"
  else record "$name" fail $dt "exit $rc: $last"; fi
  return $rc
}

# 1. the machine
NGPU=0
if [ $EMU = 1 ]; then
  NGPU=2
  skip nvidia-smi "emulated: 2 emulated GPUs (CUEMU_DEVICE_COUNT)"
  export CUEMU_DEVICE_COUNT=2
elif command -v nvidia-smi >/dev/null; then
  nvidia-smi -L >"$OUT/logs/nvidia-smi.log" 2>&1
  NGPU=$(grep -c '^GPU' "$OUT/logs/nvidia-smi.log")
  record nvidia-smi pass 0 "$NGPU GPU(s): $(head -1 "$OUT/logs/nvidia-smi.log")"
else
  record nvidia-smi fail 0 "no nvidia-smi: no driver?"
fi

# 2. parity
step cuda_parity 240 "$PARITY"

# 3. compute-sanitizer
for tool in memcheck racecheck synccheck; do
  if [ $EMU = 1 ]; then skip sanitizer_$tool "needs a GPU (the emulator's ASan build checks memory on the CPU)"
  elif ! command -v compute-sanitizer >/dev/null; then record sanitizer_$tool fail 0 "compute-sanitizer not found"
  else step sanitizer_$tool 300 compute-sanitizer --tool $tool --error-exitcode 9 "$PARITY"; fi
done

# 4. + 5. training equivalence with the CPU (1 rank; 2 ranks when N >= 2)
export CDDP_EQUIV_RANKS=$([ "$NGPU" -ge 2 ] && echo 2 || echo 1)
for m in dlrm two_tower vit; do
  step train_$m 300 bash "$here/tests/cuda/emu_train.sh" "$CDDP" "$CMP" "$HASH" "$MPIRUN" $m
done
if [ "$NGPU" -ge 2 ]; then
  "$CDDP" gen ctr "$OUT/logs/nccl.h5" --rows 4096 --seed 2 --table-size 1000 --quiet
  step nccl_np$NGPU 120 env CDDP_CHECK_REPLICAS=1 "$MPIRUN" -np "$NGPU" "$CDDP" train --model dlrm \
    --variant tiny --train "$OUT/logs/nccl.h5" --device cuda --comm nccl --max-steps 20 --batch 64
  grep -q "replica check: parameters bit-identical" "$OUT/logs/nccl_np$NGPU.log" ||
    record nccl_replicas fail 0 "no replica check line in logs/nccl_np$NGPU.log"
else
  skip nccl_multi "1 GPU visible: NCCL ran at world size 1 only"
fi
SHARD_COMM=$([ "$NGPU" -ge 4 ] && echo nccl || echo mpi)
for m in dlrm two_tower; do
  step shard_$m 600 env CDDP_SHARD_COMM=$SHARD_COMM \
    bash "$here/tests/cli/shard_equiv.sh" "$CDDP" "$CMP" "$MPIRUN" ${m}_cuda
done

# 6. step benchmark against PyTorch (bf16)
figures=()
bench() { # NAME MODEL VARIANT BATCH DATAGEN...
  local name=$1 model=$2 variant=$3 batch=$4
  shift 4
  local data=$OUT/logs/$name.h5
  "$CDDP" gen "$@" "$data" --quiet || { record bench_$name fail 0 "cddp gen failed"; return; }
  step bench_${name}_cddp 180 "$CDDP" train --model $model --variant $variant --train "$data" \
    --device cuda --precision bf16 --batch $batch --max-steps 60 --log-every 20 --lr 0.01 \
    --metrics-out "$OUT/logs/bench_$name.jsonl" || return
  local ours theirs
  ours=$(grep '"type":"train"' "$OUT/logs/bench_$name.jsonl" | tail -1 |
    sed -n 's/.*"samples_per_s":\([0-9.]*\).*/\1/p')
  if [ $EMU = 1 ]; then
    skip bench_${name}_pytorch "emulated: cddp ran ($ours samples/s on the emulator, no figure); PyTorch on cuda needs a GPU"
    return
  fi
  step bench_${name}_pytorch 180 python3 "$here/bench/pytorch/bench_step.py" --device cuda \
    --model $model --variant $variant --batch $batch --precision bf16 --data "$data" \
    --steps 40 --warmup 5 || return
  theirs=$(sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p' "$OUT/logs/bench_${name}_pytorch.log" | tail -1)
  figures+=("{\"bench\":\"$name\",\"precision\":\"bf16\",\"batch\":$batch,\"cddp_samples_per_s\":${ours:-null},\"pytorch_samples_per_s\":${theirs:-null}}")
  summary+=("  $name bf16 batch $batch: cddp ${ours:-?} samples/s, PyTorch ${theirs:-?} samples/s")
}
if [ $EMU = 1 ]; then # the same commands at emulator-sized shapes
  bench dlrm_kaggle dlrm tiny 64 ctr --rows 2048 --table-size 1000
  bench deit_small vit tiny 16 images --rows 512 --height 8 --width 8
else
  bench dlrm_kaggle dlrm kaggle 2048 ctr --rows 262144 --table-size 1000000
  bench deit_small vit deit-small 128 images --rows 2048 --height 224 --width 224 --channels 3 \
    --num-classes 1000
fi

# the report
machine=$( (nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo emulated) | head -1)
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
fails=$(printf '%s\n' "${steps[@]}" | grep -c '"status":"fail"')
join() { local IFS=,; echo "$*"; }
cat >"$OUT/gpu-check.json" <<EOF
{"emulated":$([ $EMU = 1 ] && echo true || echo false),"machine":"$machine","gpus":$NGPU,"commit":"$commit","date":"$(date -u +%FT%TZ)","seconds":$(($(date +%s) - T0)),"failures":$fails,
"steps":[$(join "${steps[@]}")],
"figures":[$(join "${figures[@]}")]}
EOF
{
  echo "cddp GPU check: $machine, $NGPU GPU(s), commit $commit, $(date -u +%F), $(($(date +%s) - T0)) s$([ $EMU = 1 ] && echo ', EMULATED dry run')"
  printf '%s\n' "${summary[@]}"
  echo "$fails failure(s); logs in $OUT/logs"
} | tee "$OUT/gpu-check.txt"
[ "$fails" = 0 ]

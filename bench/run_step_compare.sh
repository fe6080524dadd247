#!/usr/bin/env bash
# cddp vs PyTorch, one training step (forward + backward + SGD update) on the
# CPU, same thread count, run ALTERNATELY in one invocation so that both see
# the same machine load. Builds nothing: pass the build directory that holds
# bench/bench_step (cmake --build <dir> --target bench_step).
#
#   bench/run_step_compare.sh [BUILD_DIR] [ROUNDS]
#   env: THREADS (1), STEPS (10), WARMUP (2), MODELS ("dlrm vit"),
#        DLRM_BATCH (2048), VIT_BATCH (128), TIMER (cpu with 1 thread, else wall)
#
# TIMER=cpu times each step by the process CPU time instead of the wall clock
# (cddp: its cpu_ms_per_step; PyTorch: bench_step.py run with its
# time.perf_counter replaced by time.process_time). On a machine shared with
# other work this removes the time spent descheduled; with one thread and an
# idle machine both timers agree. TIMER=wall uses wall time for both.
#
# OPENBLAS_CORETYPE is left as the environment has it; cddp's lines record the
# OpenBLAS kernels that ran ("blas"), which move its GEMM speed by up to 1.6x.
#
# Prints every raw JSON line, then per model the median over rounds of each
# implementation's mean step time and cddp_speedup = torch_ms / cddp_ms.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
rounds=${2:-3}
threads=${THREADS:-1}
steps=${STEPS:-10}
warmup=${WARMUP:-2}
models=${MODELS:-"dlrm vit"}
if [ "$threads" = 1 ]; then timer=${TIMER:-cpu}; else timer=${TIMER:-wall}; fi
case $timer in cpu|wall) ;; *) echo "TIMER=$timer: cpu or wall" >&2; exit 2;; esac
bin=$build/bench/bench_step
[ -x "$bin" ] || { echo "no $bin: build the bench_step target first" >&2; exit 2; }
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$rounds"); do
  for m in $models; do
    if [ "$m" = dlrm ]; then b=${DLRM_BATCH:-2048}; else b=${VIT_BATCH:-128}; fi
    # alternate which one goes first so neither always runs on a warmer machine
    if [ $((r % 2)) = 1 ]; then order="cddp torch"; else order="torch cddp"; fi
    for impl in $order; do
      if [ "$impl" = cddp ]; then
        line=$("$bin" --model "$m" --batch "$b" --threads "$threads" --steps "$steps" --warmup "$warmup")
      else
        line=$(TIMER=$timer python3 -c '
import os, runpy, sys, time
if os.environ["TIMER"] == "cpu":
    time.perf_counter = time.process_time
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
' "$here/pytorch/bench_step.py" --model "$m" --batch "$b" --threads "$threads" \
                 --steps "$steps" --warmup "$warmup")
      fi
      echo "round $r: $line"
      echo "$line" >> "$out"
    done
  done
done

python3 - "$out" "$timer" <<'EOF'
import json, statistics, sys
timer = sys.argv[2]
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for model in dict.fromkeys(r["model"] for r in rows):
    c = [r["cpu_ms_per_step" if timer == "cpu" else "ms_per_step"] for r in rows if r["model"] == model and r["impl"] == "cddp"]
    t = [r["step_ms_mean"] for r in rows if r["model"] == model and r["impl"] == "pytorch"]
    cm, tm = statistics.median(c), statistics.median(t)
    b = next(r["batch"] for r in rows if r["model"] == model)
    th = next(r["threads"] for r in rows if r["model"] == model)
    blas = next(r.get("blas", "?") for r in rows if r["model"] == model and r["impl"] == "cddp")
    print(json.dumps({"model": model, "batch": b, "threads": th, "timer": timer, "blas": blas, "rounds": len(c),
                      "cddp_ms_median": round(cm, 2), "torch_ms_median": round(tm, 2),
                      "cddp_ms_all": [round(x, 1) for x in c], "torch_ms_all": [round(x, 1) for x in t],
                      "cddp_speedup": round(tm / cm, 3)}))
EOF

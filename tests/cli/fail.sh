#!/usr/bin/env bash
# Model-level failures of a DDP job end every rank with a clear message and
# the right exit code, never a hang (each case runs under `timeout 60`).
# A per-rank wrapper (OMPI_COMM_WORLD_RANK) gives one rank different options.
# usage: fail.sh CDDP MPIRUN CASE
#   emb_dim      two_tower, rank 1 of 2 has --emb-dim 8: exit 2 naming the option
#   table_rows   dlrm, rank 3 of 4 caps tables with --max-table-rows 16: exit 2
#   variant      dlrm, rank 1 of 2 runs --variant kaggle: exit 2 naming the variants
#   replicas     dlrm, rank 1 of 2 has another --lr: the start-up check (every option
#                the option table does not mark per rank) refuses it, exit 2 naming it
#   bucket       dlrm, rank 1 of 2 has another --first-bucket-mb (an option no
#                hand-kept list named): exit 2 naming it
#   per_rank     dlrm, rank 1 of 2 has its own --loader-threads, --threads, --timeout,
#                --progress, --quiet (marked per rank): the run ends normally, with
#                bit-identical replicas
#   bad_input    rank 1 of 2 reads a missing --train file: exit 3, the job ends
#   data_shape   two_tower, rank 1 of 2 trains on a file with another num_items (the
#                schema's shape lines): exit 2 naming both values
#   eval_shape   vit, --eval images with other classes than --train's: exit 2 naming both
set -u
CDDP=$1 MPIRUN=$2 CASE=$3
W=$(mktemp -d /tmp/cddp_ddp_fail.XXXXXX)
trap 'rm -rf "$W"' EXIT
# wrapper RANK EXTRA...: runs cddp with EXTRA appended on that rank only.
cat >"$W/wrap.sh" <<'WRAP'
#!/usr/bin/env bash
cddp=$1 rank=$2 n=$3
shift 3
extra=("${@:1:$n}")
shift "$n"
if [ "${OMPI_COMM_WORLD_RANK:-0}" = "$rank" ]; then exec "$cddp" "$@" "${extra[@]}"; fi
exec "$cddp" "$@"
WRAP
chmod +x "$W/wrap.sh"
COMMON=(--threads 1 --max-steps 4 --progress plain --timeout 20)
expect() { # want-rc regex np rank "extra..." args...
  local want=$1 re=$2 np=$3 rank=$4 extra=$5
  shift 5
  local -a ex
  read -r -a ex <<<"$extra"
  local t0=$SECONDS out rc
  out=$(timeout 60 "$MPIRUN" --oversubscribe -np "$np" "$W/wrap.sh" "$CDDP" "$rank" "${#ex[@]}" \
    "${ex[@]}" train "$@" "${COMMON[@]}" 2>&1)
  rc=$?
  echo "$out" | grep -E "cddp|rank" | head -5
  if [ $rc = "$want" ] && grep -Eq "$re" <<<"$out"; then
    echo "ok: $CASE: exit $rc after $((SECONDS - t0)) s"
    exit 0
  fi
  echo "FAIL: $CASE: exit $rc (want $want), message /$re/ $(grep -Eq "$re" <<<"$out" && echo found || echo missing)"
  echo "$out" | tail -20
  exit 1
}
case $CASE in
emb_dim)
  "$CDDP" gen twotower "$W/d.h5" --rows 400 --seed 3 --num-users 50 --num-items 60 --num-cats 5 \
    --hist-len 4 --quiet || exit 1
  expect 2 'ranks disagree on the model/data configuration: rank 0 and rank 1 first differ at line [0-9]+: rank 0 has "emb-dim = 0", rank 1 has "emb-dim = 8"' \
    2 1 "--emb-dim 8" --model two_tower --variant tiny --train "$W/d.h5" --batch 16 ;;
table_rows)
  "$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
  expect 2 'ranks disagree on the model/data configuration: rank 0 and rank 3 first differ' \
    4 3 "--max-table-rows 16" --model dlrm --variant tiny --train "$W/d.h5" --batch 16 ;;
variant)
  "$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
  expect 2 'first differ at line [0-9]+: rank 0 has "variant = tiny", rank 1 has "variant = kaggle"' \
    2 1 "--variant kaggle" --model dlrm --variant tiny --train "$W/d.h5" --batch 16 ;;
replicas)
  "$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
  expect 2 'first differ at line [0-9]+: rank 0 has "lr = 0\.1[0-9]*", rank 1 has "lr = 0\.2[0-9]*"' \
    2 1 "--lr 0.2" --model dlrm --variant tiny --train "$W/d.h5" --batch 16 --lr 0.1 ;;
bucket)
  "$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
  expect 2 'first differ at line [0-9]+: rank 0 has "first-bucket-mb = 1", rank 1 has "first-bucket-mb = 0\.0[0-9]*"' \
    2 1 "--first-bucket-mb 0.001" --model dlrm --variant tiny --train "$W/d.h5" --batch 16 ;;
per_rank)
  "$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
  export CDDP_CHECK_REPLICAS=1
  expect 0 'replica check: parameters bit-identical on all 2 ranks after 4 steps' \
    2 1 "--loader-threads 2 --threads 2 --timeout 30 --progress bar --quiet" \
    --model dlrm --variant tiny --train "$W/d.h5" --batch 16 ;;
bad_input)
  "$CDDP" gen ctr "$W/d.h5" --rows 400 --seed 2 --table-size 40 --quiet || exit 1
  expect 3 "rank 1: .*$W/missing.h5" \
    2 1 "--train $W/missing.h5" --model dlrm --variant tiny --train "$W/d.h5" --batch 16 ;;
data_shape)
  for n in 60 70; do
    "$CDDP" gen twotower "$W/d$n.h5" --rows 400 --seed 3 --num-users 50 --num-items $n \
      --num-cats 5 --hist-len 4 --quiet || exit 1
  done
  expect 2 'first differ at line [0-9]+: rank 0 has "data num_items = 60", rank 1 has "data num_items = 70"' \
    2 1 "--train $W/d70.h5" --model two_tower --variant tiny --train "$W/d60.h5" --batch 16 ;;
eval_shape)
  "$CDDP" gen images "$W/d.h5" --rows 200 --seed 3 --height 8 --width 8 --quiet || exit 1
  "$CDDP" gen images "$W/e.h5" --rows 50 --seed 4 --height 8 --width 8 --num-classes 5 --quiet || exit 1
  expect 2 "eval $W/e.h5 has num_classes = 5, --train $W/d.h5 has num_classes = 10" \
    1 0 "" --model vit --variant tiny --train "$W/d.h5" --eval "$W/e.h5" --batch 16 ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac

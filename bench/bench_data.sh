# Sourced by the benchmark scripts: one thread per rank, MPI as root, and the
# inputs they share (files already there are reused):
#   bench_ctr CDDP FILE ROWS SEED [TABLE_SIZE]   `cddp gen ctr` data
#   bench_fmnist CDDP FILE                       Fashion-MNIST from $FMNIST
#                                                (Debian's dataset-fashion-mnist by default)
#   bench_data CDDP DIR CTR_ROWS                 DIR/fmnist.h5 and DIR/ctr.h5 (seed 5)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
bench_ctr() {
  local cddp=$1 file=$2 rows=$3 seed=$4 ts=()
  [ -n "${5:-}" ] && ts=(--table-size "$5")
  mkdir -p "$(dirname "$file")" || return 1
  [ -f "$file" ] || "$cddp" gen ctr "$file" --rows "$rows" --seed "$seed" ${ts[@]+"${ts[@]}"} --quiet
}
bench_fmnist() {
  local cddp=$1 file=$2 fm=${FMNIST:-/usr/share/datasets/fashion-mnist}
  mkdir -p "$(dirname "$file")" || return 1
  [ -f "$file" ] || "$cddp" convert idx "$fm/train-images-idx3-ubyte.gz" \
    "$fm/train-labels-idx1-ubyte.gz" "$file" >/dev/null
}
bench_data() {
  bench_fmnist "$1" "$2/fmnist.h5" && bench_ctr "$1" "$2/ctr.h5" "$3" 5
}

# Sourced by the benchmark scripts: one thread per rank, MPI as root, and the
# two inputs they share in DIR — fmnist.h5 (Fashion-MNIST from $FMNIST, Debian's
# dataset-fashion-mnist by default) and ctr.h5 (`cddp gen ctr`, seed 5).
# Usage: bench_data CDDP DIR CTR_ROWS   (files already in DIR are reused)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
bench_data() {
  local cddp=$1 dir=$2 rows=$3 fm=${FMNIST:-/usr/share/datasets/fashion-mnist}
  mkdir -p "$dir" || return 1
  [ -f "$dir/fmnist.h5" ] || "$cddp" convert idx "$fm/train-images-idx3-ubyte.gz" \
    "$fm/train-labels-idx1-ubyte.gz" "$dir/fmnist.h5" >/dev/null || return 1
  [ -f "$dir/ctr.h5" ] || "$cddp" gen ctr "$dir/ctr.h5" --rows "$rows" --seed 5 --quiet || return 1
}

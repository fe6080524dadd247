#!/bin/sh
# CI's second build: clang with AddressSanitizer + UndefinedBehaviorSanitizer
# (any finding aborts the test) and the libFuzzer targets, in build-sanitize/.
# Runs the ctest suite there, then every fuzz target's bounded run
# (tests/fuzz/run.sh, fixed seed). Arguments go to ctest (e.g. -R data_).
# Left out of this build's suite, being covered by the main build and too slow
# under ASan on 2 cores: $CDDP_SANITIZE_SKIP (default below).
# LeakSanitizer is off: Open MPI's plugins allocate at MPI_Init and are
# unloaded before exit, so every MPI process "leaks"; the fuzz targets reclaim
# what a rejected input held (tests/fuzz/fuzz_reclaim.c).
set -eu
cd "$(dirname "$0")/.."
CC=${SANITIZE_CC:-clang} cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDDP_CUDA=OFF \
  -DCDDP_SANITIZE=address,undefined -DCDDP_FUZZ=ON >/dev/null
cmake --build build-sanitize -j "$(nproc)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1
SKIP=${CDDP_SANITIZE_SKIP:-'^(multihost_|ddp_equiv_|shard_equiv_|train_amp_curves)'}
cd build-sanitize && ctest --output-on-failure -j 2 -E "$SKIP" "$@"

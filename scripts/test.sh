#!/bin/sh
# Builds cddp and runs the whole ctest suite; ends with ctest's summary line.
# The CUDA backend runs too, on the CPU emulation (build-emu/, build-emu-asan/),
# and the suite and the fuzz targets under ASan + UBSan (build-sanitize/).
set -eu
cd "$(dirname "$0")/.."
./scripts/build.sh
./scripts/build-emu.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
(cd build-emu && ctest --output-on-failure -j 2 -L cuda_emu)
(cd build-emu-asan && ctest --output-on-failure -j 2 -L cuda_emu_sanitize)
./scripts/test-sanitizers.sh
cd build && ctest --output-on-failure -j 2 "$@"

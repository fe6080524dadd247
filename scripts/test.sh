#!/bin/sh
# Builds cddp and runs the whole ctest suite; ends with ctest's summary line.
set -eu
cd "$(dirname "$0")/.."
./scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build && ctest --output-on-failure -j 2 "$@"

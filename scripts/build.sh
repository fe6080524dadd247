#!/bin/sh
# Configures and builds cddp into build/ (CUDA backend when the toolkit is found).
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"

#!/bin/sh
# Configures and builds the CUDA backend for the CPU emulation (tests/cuda_emu,
# docs/cuda.md): build-emu/ (the whole project, --device cuda emulated) and
# build-emu-asan/ (the emulated CUDA tests under AddressSanitizer + UBSan).
# Needs no CUDA toolkit.
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DCDDP_CUDA_EMU=ON >/dev/null
cmake --build build-emu -j "$(nproc)"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
cmake -S . -B build-emu-asan -DCMAKE_BUILD_TYPE=Release -DCDDP_CUDA_EMU=ON -DCUEMU_ASAN_TESTS=ON \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_CXX_FLAGS="$san" >/dev/null
cmake --build build-emu-asan -j "$(nproc)" --target cuda_parity test_emu test_emu_libs

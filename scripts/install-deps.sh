#!/bin/sh
# Installs every build and run-time dependency of cddp on Debian 12.
# The CUDA toolkit (nvcc, cuBLASLt, cuDNN, NCCL) is optional and not installed
# here: when present, the CUDA backend is built as well.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config iproute2 \
  clang libomp-dev \
  libopenmpi-dev openmpi-bin \
  libhdf5-dev hdf5-tools \
  libopenblas-dev zlib1g-dev \
  libinih-dev libjson-c-dev libcmocka-dev \
  libboost-context-dev \
  python3-h5py gnuplot-nox \
  slurm-wlm munge \
  dataset-fashion-mnist

/* Deterministic reductions (C++ templates, included by .cu files).
 *
 * No float atomics: every reduction writes per-block partials (double) into
 * g_cu.scratch and a second kernel adds them up in a fixed order. The launch
 * shapes depend only on the problem size and the device's SM count, so the
 * same input gives the same bits on the same GPU model. All of this runs on
 * the compute stream, which orders the scratch uses. */
#ifndef CDDP_KERNELS_CUDA_REDUCE_H
#define CDDP_KERNELS_CUDA_REDUCE_H

#include "kernels/cuda/cuda_common.h"

/* part[blockIdx.x] = sum_{i<n} f(i) over this block's grid-stride share */
template <class F>
__global__ void cu_sum_partial_kernel(F f, size_t n, double *part) {
  double s = 0.0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    s += (double)f(i);
  s = cu_block_sum_d(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* *acc += sum_{i<n} f(i) (f returns float or double) */
template <class F>
void cu_sum_acc(F f, size_t n, float *acc) {
  if (n == 0) return;
  unsigned g = cu_grid(n, 256);
  if (g > CU_RED_BLOCKS) g = CU_RED_BLOCKS;
  cu_sum_partial_kernel<<<g, 256, 0, g_cu.compute>>>(f, n, (double *)g_cu.scratch);
  cuLaunchCheck();
  cu_finish_sum((int)g, acc);
}

/* Column sums of f(r, c) over r < N: block (32, 8) covers 32 columns of one
 * row range [p*chunk, (p+1)*chunk); part[p*C + c] gets the range's sum. */
template <class F>
__global__ void cu_colsum_partial_kernel(F f, int N, int C, int chunk, double *part) {
  __shared__ double sh[8][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  int p = blockIdx.y;
  int r0 = p * chunk, r1 = min(N, r0 + chunk);
  double s = 0.0;
  if (c < C)
    for (int r = r0 + threadIdx.y; r < r1; r += 8) s += (double)f(r, c);
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double t = 0.0;
    for (int y = 0; y < 8; y++) t += sh[y][threadIdx.x];
    part[(size_t)p * C + c] = t;
  }
}
/* static: without relocatable device code a kernel is launchable only from
 * its own translation unit, so every including .cu gets its copy. */
static __global__ void cu_colsum_finish_kernel(const double *part, int P, int C, float *out) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double s = 0.0;
  for (int p = 0; p < P; p++) s += part[(size_t)p * C + c];
  out[c] += (float)s;
}

/* out[c] += sum_{r<N} f(r, c), c < C */
template <class F>
void cu_colsum(F f, int N, int C, float *out) {
  if (N <= 0 || C <= 0) return;
  size_t cap = g_cu.scratch_bytes / (sizeof(double) * (size_t)C);
  if (cap < 1) cddp_die(CDDP_EXIT_RUNTIME, "column reduction: %d columns exceed the scratch", C);
  int P = (N + 63) / 64; /* at least 64 rows per part */
  if (P > 128) P = 128;
  if ((size_t)P > cap) P = (int)cap;
  int chunk = (N + P - 1) / P;
  P = (N + chunk - 1) / chunk;
  dim3 grid(cu_ceil((size_t)C, 32), (unsigned)P), block(32, 8);
  cu_colsum_partial_kernel<<<grid, block, 0, g_cu.compute>>>(f, N, C, chunk, (double *)g_cu.scratch);
  cuLaunchCheck();
  cu_colsum_finish_kernel<<<cu_ceil((size_t)C, 256), 256, 0, g_cu.compute>>>(
      (const double *)g_cu.scratch, P, C, out);
  cuLaunchCheck();
}

#endif

/* Reduction helpers (see cuda_reduce.h) and the ops that are plain
 * reductions: bias_grad, sumsq. */
#include "kernels/cuda/cuda_reduce.h"

static __global__ void finish_sum_kernel(const double *part, int n, float *acc) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double s = 0.0;
  for (int i = 0; i < n; i++) s += part[i];
  *acc = (float)((double)*acc + s);
}

void cu_finish_sum(int nparts, float *acc) {
  cu_bind();
  finish_sum_kernel<<<1, 32, 0, g_cu.compute>>>((const double *)g_cu.scratch, nparts, acc);
  cuLaunchCheck();
}

struct colsum_src {
  const float *p;
  int ld;
  __device__ float operator()(int r, int c) const { return p[(size_t)r * ld + c]; }
};

void cu_colsum_acc(const float *src, int N, int C, int ld, float *out) {
  cu_colsum(colsum_src{src, ld}, N, C, out);
}

void cu_bias_grad(const float *dy, int m, int n, int ldy, float *db) {
  cu_colsum_acc(dy, m, n, ldy, db);
}

struct sq_src {
  const float *x;
  __device__ double operator()(size_t i) const { double v = x[i]; return v * v; }
};

void cu_sumsq(const float *x, size_t n, float *acc) { cu_sum_acc(sq_src{x}, n, acc); }

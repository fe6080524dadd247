/* Layer norm, L2 norm and row softmax: one warp per row (8 rows per block),
 * lanes stride over the columns, sums by warp shuffles. Layer-norm weight
 * gradients are deterministic column reductions (cuda_reduce.h). */
#include "kernels/cuda/cuda_reduce.h"

#define ROWS_PER_BLOCK 8
#define WARP_ROW_SETUP(N)                                      \
  int row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5); \
  int lane = threadIdx.x & 31;                                 \
  if (row >= (N)) return;

static __global__ void layernorm_fwd_kernel(const float *x, const float *w, const float *b,
                                            float *y, float *mean, float *rstd, int N, int C,
                                            float eps) {
  WARP_ROW_SETUP(N);
  const float *xr = x + (size_t)row * C;
  float *yr = y + (size_t)row * C;
  float s = 0.0f;
  for (int c = lane; c < C; c += 32) s += xr[c];
  float mu = cu_warp_sum(s) / C;
  float v = 0.0f;
  for (int c = lane; c < C; c += 32) { float d = xr[c] - mu; v += d * d; }
  float rs = 1.0f / sqrtf(cu_warp_sum(v) / C + eps);
  for (int c = lane; c < C; c += 32) yr[c] = (xr[c] - mu) * rs * w[c] + b[c];
  if (lane == 0) { mean[row] = mu; rstd[row] = rs; }
}

static __global__ void layernorm_bwd_dx_kernel(const float *dy, const float *x, const float *w,
                                               const float *mean, const float *rstd, float *dx,
                                               int N, int C, int acc) {
  WARP_ROW_SETUP(N);
  const float *xr = x + (size_t)row * C, *dyr = dy + (size_t)row * C;
  float *dxr = dx + (size_t)row * C;
  float mu = mean[row], rs = rstd[row];
  float s1 = 0.0f, s2 = 0.0f;
  for (int c = lane; c < C; c += 32) {
    float xh = (xr[c] - mu) * rs, g = dyr[c] * w[c];
    s1 += g;
    s2 += g * xh;
  }
  s1 = cu_warp_sum(s1) / C;
  s2 = cu_warp_sum(s2) / C;
  for (int c = lane; c < C; c += 32) {
    float xh = (xr[c] - mu) * rs;
    float v = rs * (dyr[c] * w[c] - s1 - xh * s2);
    dxr[c] = acc ? dxr[c] + v : v;
  }
}

struct ln_dw_src {
  const float *dy, *x, *mean, *rstd;
  int C;
  __device__ float operator()(int r, int c) const {
    size_t i = (size_t)r * C + c;
    return dy[i] * ((x[i] - mean[r]) * rstd[r]);
  }
};

void cu_layernorm_fwd(const float *x, const float *w, const float *b, float *y, float *mean,
                      float *rstd, int N, int C, float eps) {
  if (N <= 0 || C <= 0) return;
  layernorm_fwd_kernel<<<cu_ceil(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, g_cu.compute>>>(
      x, w, b, y, mean, rstd, N, C, eps);
  cuLaunchCheck();
}

void cu_layernorm_bwd(const float *dy, const float *x, const float *w, const float *mean,
                      const float *rstd, float *dx, float *dw, float *db, int N, int C,
                      int accumulate_dx) {
  if (N <= 0 || C <= 0) return;
  layernorm_bwd_dx_kernel<<<cu_ceil(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, g_cu.compute>>>(
      dy, x, w, mean, rstd, dx, N, C, accumulate_dx);
  cuLaunchCheck();
  cu_colsum(ln_dw_src{dy, x, mean, rstd, C}, N, C, dw);
  cu_colsum_acc(dy, N, C, C, db);
}

static __global__ void l2norm_fwd_kernel(const float *x, float *y, float *norm, int N, int C,
                                         float eps) {
  WARP_ROW_SETUP(N);
  const float *xr = x + (size_t)row * C;
  float *yr = y + (size_t)row * C;
  float s = 0.0f;
  for (int c = lane; c < C; c += 32) s += xr[c] * xr[c];
  float nr = sqrtf(cu_warp_sum(s));
  nr = nr > eps ? nr : eps;
  float inv = 1.0f / nr;
  for (int c = lane; c < C; c += 32) yr[c] = xr[c] * inv;
  if (lane == 0) norm[row] = nr;
}

/* As the CPU backend: rows whose norm was clamped (||y||^2 < 1 - 1e-4) have a
 * constant divisor, dx = dy / norm; others dx = (dy - y <dy, y>) / norm. */
static __global__ void l2norm_bwd_kernel(const float *dy, const float *y, const float *norm,
                                         float *dx, int N, int C) {
  WARP_ROW_SETUP(N);
  const float *yr = y + (size_t)row * C, *dyr = dy + (size_t)row * C;
  float *dxr = dx + (size_t)row * C;
  float d = 0.0f, yy = 0.0f;
  for (int c = lane; c < C; c += 32) { d += dyr[c] * yr[c]; yy += yr[c] * yr[c]; }
  d = cu_warp_sum(d);
  yy = cu_warp_sum(yy);
  if (yy < 1.0f - 1e-4f) d = 0.0f;
  float inv = 1.0f / norm[row];
  for (int c = lane; c < C; c += 32) dxr[c] = (dyr[c] - yr[c] * d) * inv;
}

void cu_l2norm_fwd(const float *x, float *y, float *norm, int N, int C, float eps) {
  if (N <= 0 || C <= 0) return;
  l2norm_fwd_kernel<<<cu_ceil(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, g_cu.compute>>>(
      x, y, norm, N, C, eps);
  cuLaunchCheck();
}
void cu_l2norm_bwd(const float *dy, const float *y, const float *norm, float *dx, int N, int C) {
  if (N <= 0 || C <= 0) return;
  l2norm_bwd_kernel<<<cu_ceil(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, g_cu.compute>>>(
      dy, y, norm, dx, N, C);
  cuLaunchCheck();
}

/* y may alias x: each element is read before the same lane writes it. */
static __global__ void softmax_fwd_kernel(const float *x, float *y, int N, int C) {
  WARP_ROW_SETUP(N);
  const float *xr = x + (size_t)row * C;
  float *yr = y + (size_t)row * C;
  float mx = -INFINITY;
  for (int c = lane; c < C; c += 32) mx = fmaxf(mx, xr[c]);
  mx = cu_warp_max(mx);
  float s = 0.0f;
  for (int c = lane; c < C; c += 32) { float e = expf(xr[c] - mx); yr[c] = e; s += e; }
  float inv = 1.0f / cu_warp_sum(s);
  for (int c = lane; c < C; c += 32) yr[c] *= inv;
}
/* dx = y (dy - <dy, y>); dx may alias dy. */
static __global__ void softmax_bwd_kernel(const float *y, const float *dy, float *dx, int N, int C) {
  WARP_ROW_SETUP(N);
  const float *yr = y + (size_t)row * C, *dyr = dy + (size_t)row * C;
  float *dxr = dx + (size_t)row * C;
  float d = 0.0f;
  for (int c = lane; c < C; c += 32) d += dyr[c] * yr[c];
  d = cu_warp_sum(d);
  for (int c = lane; c < C; c += 32) dxr[c] = yr[c] * (dyr[c] - d);
}

void cu_softmax_fwd(const float *x, float *y, int N, int C) {
  if (N <= 0 || C <= 0) return;
  softmax_fwd_kernel<<<cu_ceil(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, g_cu.compute>>>(x, y, N, C);
  cuLaunchCheck();
}
void cu_softmax_bwd(const float *y, const float *dy, float *dx, int N, int C) {
  if (N <= 0 || C <= 0) return;
  softmax_bwd_kernel<<<cu_ceil(N, ROWS_PER_BLOCK), 32 * ROWS_PER_BLOCK, 0, g_cu.compute>>>(y, dy, dx, N, C);
  cuLaunchCheck();
}

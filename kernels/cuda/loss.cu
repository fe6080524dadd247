/* Losses: BCE with logits and softmax cross-entropy with label smoothing.
 * Per-sample losses are summed deterministically: each block writes a double
 * partial to scratch, one thread adds the partials in order to *loss_sum.
 * Labels outside [0, C) other than -1 cannot stop the job here without a host
 * sync: they are treated like -1 (no loss, zero gradient); the data loader
 * validates labels where they enter (DESIGN §6). */
#include "kernels/cuda/cuda_reduce.h"

/* loss = max(x,0) - x y + log(1 + exp(-|x|)); dlogit = s (sigmoid(x) - y) */
static __global__ void bce_kernel(const float *logits, const float *labels, int n, float grad_scale,
                                  const float *loss_scale, float *dlogits, double *part) {
  float s = grad_scale * (loss_scale ? *loss_scale : 1.0f);
  double acc = 0.0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    float x = logits[i], y = labels[i];
    acc += (x > 0.0f ? x : 0.0f) - (double)x * y + log1p(exp(-fabs((double)x)));
    float sg = 1.0f / (1.0f + expf(-x));
    dlogits[i] = s * (sg - y);
  }
  acc = cu_block_sum_d(acc);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

void cu_bce_logits(const float *logits, const float *labels, int n, float grad_scale,
                   const float *loss_scale, float *loss_sum, float *dlogits) {
  if (n <= 0) return;
  unsigned g = cu_grid((size_t)n, 256);
  if (g > CU_RED_BLOCKS) g = CU_RED_BLOCKS;
  bce_kernel<<<g, 256, 0, g_cu.compute>>>(logits, labels, n, grad_scale, loss_scale, dlogits,
                                          (double *)g_cu.scratch);
  cuLaunchCheck();
  cu_finish_sum((int)g, loss_sum);
}

/* One warp per row; 8 warps per block; blocks stride over the rows. */
static __global__ void xent_kernel(const float *logits, int ld, const int32_t *labels, int N, int C,
                                   float smoothing, float grad_scale, const float *loss_scale,
                                   float *dlogits, double *part) {
  float s = grad_scale * (loss_scale ? *loss_scale : 1.0f);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  double acc = 0.0; /* lane 0's sum of its rows' losses */
  for (int r = blockIdx.x * 8 + warp; r < N; r += gridDim.x * 8) {
    const float *x = logits + (size_t)r * ld;
    float *g = dlogits + (size_t)r * ld;
    int lab = labels[r];
    if (lab < 0 || lab >= C) {
      for (int c = lane; c < C; c += 32) g[c] = 0.0f;
      continue;
    }
    float mx = -INFINITY;
    for (int c = lane; c < C; c += 32) mx = fmaxf(mx, x[c]);
    mx = cu_warp_max(mx);
    float se = 0.0f, sx = 0.0f;
    for (int c = lane; c < C; c += 32) { se += expf(x[c] - mx); sx += x[c]; }
    se = cu_warp_sum(se);
    sx = cu_warp_sum(sx);
    if (lane == 0)
      acc += (double)mx + log((double)se) - (1.0 - smoothing) * x[lab] - (double)smoothing / C * sx;
    float inv = s / se, off = s * smoothing / C;
    for (int c = lane; c < C; c += 32) {
      float v = expf(x[c] - mx) * inv - off;
      if (c == lab) v -= s * (1.0f - smoothing);
      g[c] = v;
    }
  }
  acc = cu_block_sum_d(acc);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

void cu_xent(const float *logits, int ld, const int32_t *labels, int N, int C, float smoothing,
             float grad_scale, const float *loss_scale, float *loss_sum, float *dlogits) {
  if (N <= 0 || C <= 0) return;
  unsigned g = cu_ceil((size_t)N, 8);
  if (g > CU_RED_BLOCKS) g = CU_RED_BLOCKS;
  xent_kernel<<<g, 256, 0, g_cu.compute>>>(logits, ld, labels, N, C, smoothing, grad_scale,
                                           loss_scale, dlogits, (double *)g_cu.scratch);
  cuLaunchCheck();
  cu_finish_sum((int)g, loss_sum);
}

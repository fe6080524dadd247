/* Model-specific ops: DLRM dot interaction, ViT patchify and token assembly.
 * Each output element is computed by one thread with sums in a fixed order
 * (no atomics): deterministic. */
#include "kernels/cuda/cuda_common.h"

#define GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* Output column q of row b: q < D copies T[b,0,q]; q = D + p is pair p with
 * p = i(i-1)/2 + j, j < i (facebookresearch/dlrm's li/lj order). */
static __global__ void dot_fwd_kernel(const float *T, int B, int F, int D, float *out, int ldo,
                                      int npairs) {
  size_t W = (size_t)D + npairs, total = (size_t)B * W;
  GRID_LOOP(k, total) {
    size_t b = k / W;
    int q = (int)(k % W);
    const float *t = T + b * F * D;
    float v;
    if (q < D) {
      v = t[q];
    } else {
      int p = q - D;
      int i = (int)((1.0 + sqrt(1.0 + 8.0 * p)) * 0.5);
      while (i * (i - 1) / 2 > p) i--;
      while ((i + 1) * i / 2 <= p) i++;
      int j = p - i * (i - 1) / 2;
      const float *ti = t + (size_t)i * D, *tj = t + (size_t)j * D;
      float s = 0.0f;
      for (int d = 0; d < D; d++) s += ti[d] * tj[d];
      v = s;
    }
    out[b * ldo + q] = v;
  }
}

/* dT[b,i,d] = [i==0] dout[b,d] + sum_{j<i} g(i,j) T[b,j,d] + sum_{j>i} g(j,i) T[b,j,d] */
static __global__ void dot_bwd_kernel(const float *dout, int ldo, const float *T, int B, int F,
                                      int D, float *dT) {
  size_t total = (size_t)B * F * D;
  GRID_LOOP(k, total) {
    size_t b = k / ((size_t)F * D);
    int i = (int)((k / D) % F), d = (int)(k % D);
    const float *t = T + b * F * D, *g = dout + b * ldo + D;
    float s = i == 0 ? dout[b * ldo + d] : 0.0f;
    for (int j = 0; j < F; j++) {
      if (j == i) continue;
      int p = j < i ? i * (i - 1) / 2 + j : j * (j - 1) / 2 + i;
      s += g[p] * t[(size_t)j * D + d];
    }
    dT[k] = s;
  }
}

void cu_dot_interact_fwd(const float *T, int B, int F, int D, float *out, int ldo) {
  if (B <= 0 || F <= 0 || D <= 0) return;
  int np = F * (F - 1) / 2;
  size_t total = (size_t)B * (D + np);
  dot_fwd_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(T, B, F, D, out, ldo, np);
  cuLaunchCheck();
}

void cu_dot_interact_bwd(const float *dout, int ldo, const float *T, int B, int F, int D,
                         float *dT) {
  if (B <= 0 || F <= 0 || D <= 0) return;
  size_t total = (size_t)B * F * D;
  dot_bwd_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(dout, ldo, T, B, F, D, dT);
  cuLaunchCheck();
}

/* out[b, p, c*P*P + ky*P + kx] = img[b, py*P+ky, px*P+kx, c] * a[c] + o[c],
 * a = 1/(255 std), o = -mean/std (the CPU backend's formula). */
static __global__ void patchify_kernel(const uint8_t *img, int B, int H, int W, int C, int P,
                                       const float *mean, const float *stdv, float *out) {
  int gw = W / P, nP = (H / P) * gw, K = C * P * P;
  size_t total = (size_t)B * nP * K;
  GRID_LOOP(k, total) {
    size_t bp = k / K;
    int e = (int)(k % K);
    int b = (int)(bp / nP), p = (int)(bp % nP), py = p / gw, px = p % gw;
    int c = e / (P * P), ky = (e / P) % P, kx = e % P;
    float a = 1.0f / (255.0f * stdv[c]), o = -mean[c] / stdv[c];
    uint8_t x = img[(((size_t)b * H + (size_t)py * P + ky) * W + (size_t)px * P + kx) * C + c];
    out[k] = x * a + o;
  }
}

void cu_patchify(const uint8_t *img, int B, int H, int W, int C, int P, const float *mean,
                 const float *std, float *out) {
  if (B <= 0 || P <= 0) return;
  size_t total = (size_t)B * (H / P) * (W / P) * C * P * P;
  if (!total) return;
  patchify_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(img, B, H, W, C, P, mean, std, out);
  cuLaunchCheck();
}

static __global__ void tokens_fwd_kernel(const float *patch, const float *cls, const float *pos,
                                         float *x, int B, int nP, int D) {
  int T = nP + 1;
  size_t total = (size_t)B * T * D;
  GRID_LOOP(k, total) {
    size_t bt = k / D;
    int d = (int)(k % D), b = (int)(bt / T), t = (int)(bt % T);
    float v = t == 0 ? cls[d] : patch[((size_t)b * nP + t - 1) * D + d];
    x[k] = v + pos[(size_t)t * D + d];
  }
}

/* one thread per (t, d): dpos/dcls sum over b in order; dpatch copies */
static __global__ void tokens_bwd_kernel(const float *dx, float *dpatch, float *dcls, float *dpos,
                                         int B, int nP, int D) {
  int T = nP + 1;
  size_t total = (size_t)T * D;
  GRID_LOOP(k, total) {
    int t = (int)(k / D), d = (int)(k % D);
    float sp = 0.0f;
    for (int b = 0; b < B; b++) {
      float g = dx[((size_t)b * T + t) * D + d];
      sp += g;
      if (t > 0) dpatch[((size_t)b * nP + t - 1) * D + d] = g;
    }
    dpos[k] += sp;
    if (t == 0) dcls[d] += sp;
  }
}

void cu_vit_tokens_fwd(const float *patch, const float *cls, const float *pos, float *x, int B,
                       int nP, int D) {
  size_t total = (size_t)B * (nP + 1) * D;
  if (!total) return;
  tokens_fwd_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(patch, cls, pos, x, B, nP, D);
  cuLaunchCheck();
}

void cu_vit_tokens_bwd(const float *dx, float *dpatch, float *dcls, float *dpos, int B, int nP,
                       int D) {
  size_t total = (size_t)(nP + 1) * D;
  if (!total || B <= 0) return;
  tokens_bwd_kernel<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(dx, dpatch, dcls, dpos, B, nP, D);
  cuLaunchCheck();
}

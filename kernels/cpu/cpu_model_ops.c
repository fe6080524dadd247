/* Model-specific ops: DLRM dot interaction, ViT patchify and token assembly. */
#include "core/error.h"
#include "kernels/cpu/cpu_internal.h"

void cpu_dot_interact_fwd(const float *T, int B, int F, int D, float *out, int ldo) {
#pragma omp parallel for schedule(static) if ((size_t)B * F * F * D >= CPU_PAR_MIN)
  for (int b = 0; b < B; b++) {
    const float *t = T + (size_t)b * F * D;
    float *o = out + (size_t)b * ldo;
    memcpy(o, t, (size_t)D * sizeof(float));
    int p = D;
    for (int i = 1; i < F; i++) {
      const float *ti = t + (size_t)i * D;
      for (int j = 0; j < i; j++) {
        const float *tj = t + (size_t)j * D;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < D; d++) s += ti[d] * tj[d];
        o[p++] = s;
      }
    }
  }
}

/* dT[b,i] = [i==0] dout[b,0:D] + sum_{j<i} g_ij T[b,j] + sum_{j>i} g_ji T[b,j] */
void cpu_dot_interact_bwd(const float *dout, int ldo, const float *T, int B, int F, int D,
                          float *dT) {
#pragma omp parallel for schedule(static) if ((size_t)B * F * F * D >= CPU_PAR_MIN)
  for (int b = 0; b < B; b++) {
    const float *t = T + (size_t)b * F * D;
    const float *g = dout + (size_t)b * ldo;
    float *dt = dT + (size_t)b * F * D;
    memcpy(dt, g, (size_t)D * sizeof(float));
    memset(dt + D, 0, (size_t)(F - 1) * D * sizeof(float));
    int p = D;
    for (int i = 1; i < F; i++) {
      const float *ti = t + (size_t)i * D;
      float *dti = dt + (size_t)i * D;
      for (int j = 0; j < i; j++) {
        const float *tj = t + (size_t)j * D;
        float *dtj = dt + (size_t)j * D;
        float gij = g[p++];
#pragma omp simd
        for (int d = 0; d < D; d++) {
          dti[d] += gij * tj[d];
          dtj[d] += gij * ti[d];
        }
      }
    }
  }
}

void cpu_patchify(const uint8_t *img, int B, int H, int W, int C, int P, const float *mean,
                  const float *std, float *out) {
  int gh = H / P, gw = W / P, nP = gh * gw, K = C * P * P;
  /* value = (x/255 - mean[c]) / std[c] = x * a[c] + o[c] */
  float a[16], o[16];
  if (C > 16) cddp_die(CDDP_EXIT_USAGE, "patchify: %d channels (at most 16)", C);
  for (int c = 0; c < C; c++) {
    a[c] = 1.0f / (255.0f * std[c]);
    o[c] = -mean[c] / std[c];
  }
#pragma omp parallel for schedule(static) if ((size_t)B * H * W * C >= CPU_PAR_MIN)
  for (int bp = 0; bp < B * nP; bp++) {
    int b = bp / nP, p = bp % nP, py = p / gw, px = p % gw;
    float *dst = out + (size_t)bp * K;
    for (int ky = 0; ky < P; ky++) {
      const uint8_t *src = img + (((size_t)b * H + (size_t)py * P + ky) * W + (size_t)px * P) * C;
      for (int kx = 0; kx < P; kx++)
        for (int c = 0; c < C; c++)
          dst[(size_t)c * P * P + ky * P + kx] = src[kx * C + c] * a[c] + o[c];
    }
  }
}

void cpu_vit_tokens_fwd(const float *patch, const float *cls, const float *pos, float *x, int B,
                        int nP, int D) {
  int T = nP + 1;
#pragma omp parallel for schedule(static) if ((size_t)B * T * D >= CPU_PAR_MIN)
  for (int bt = 0; bt < B * T; bt++) {
    int b = bt / T, t = bt % T;
    const float *src = t == 0 ? cls : patch + ((size_t)b * nP + t - 1) * D;
    const float *ps = pos + (size_t)t * D;
    float *dst = x + (size_t)bt * D;
#pragma omp simd
    for (int d = 0; d < D; d++) dst[d] = src[d] + ps[d];
  }
}

/* dpatch overwritten; dcls, dpos accumulate (sums over b in order). */
void cpu_vit_tokens_bwd(const float *dx, float *dpatch, float *dcls, float *dpos, int B, int nP,
                        int D) {
  int T = nP + 1;
#pragma omp parallel for schedule(static) if ((size_t)B * T * D >= CPU_PAR_MIN)
  for (int t = 0; t < T; t++) {
    float *dp = dpos + (size_t)t * D;
    for (int b = 0; b < B; b++) {
      const float *g = dx + ((size_t)b * T + t) * D;
#pragma omp simd
      for (int d = 0; d < D; d++) dp[d] += g[d];
      if (t == 0) {
#pragma omp simd
        for (int d = 0; d < D; d++) dcls[d] += g[d];
      } else {
        memcpy(dpatch + ((size_t)b * nP + t - 1) * D, g, (size_t)D * sizeof(float));
      }
    }
  }
}

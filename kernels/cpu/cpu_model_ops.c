/* Model-specific ops: DLRM dot interaction, ViT patchify and token assembly. */
#include "core/error.h"
#include "kernels/cpu/cpu_internal.h"

/* Dot interaction, vectorised across pairs instead of inside each D-long dot
 * (a horizontal sum per pair costs more than the dot itself at D = 16).
 * Forward, per sample: tt = t^T [D, Fp] (Fp = F rounded up to 16, padding
 * zero); row i's dots with rows j < i accumulate in lanes j, over d in order.
 * Backward, per sample: G = the symmetric [F, F] gradient matrix (zero
 * diagonal) from the packed lower triangle; dT[i,:] = [i==0] dout[0:D] +
 * sum_j G[i,j] T[j,:], j in order. Per-thread scratch holds tt or G;
 * samples are independent (parallel). The bodies are specialised for D = 16
 * (the DLRM Kaggle width) so that a row is one register. */
static int pad16(int x) { return (x + 15) & ~15; }

CPU_INLINE void dot_fwd_sample(const float *t, int F, int D, float *o, float *tt, float *acc) {
  int Fp = pad16(F);
  memcpy(o, t, (size_t)D * sizeof(float));
  for (int f = 0; f < F; f++)
    for (int d = 0; d < D; d++) tt[(size_t)d * Fp + f] = t[(size_t)f * D + d];
  int p = D;
  for (int i = 1; i < F; i++) {
    const float *ti = t + (size_t)i * D;
    int jn = pad16(i); /* whole vectors; lanes >= i are computed and dropped */
#pragma omp simd
    for (int j = 0; j < jn; j++) acc[j] = 0.0f;
    for (int d = 0; d < D; d++) {
      float x = ti[d];
      const float *col = tt + (size_t)d * Fp;
#pragma omp simd
      for (int j = 0; j < jn; j++) acc[j] += x * col[j];
    }
    memcpy(o + p, acc, (size_t)i * sizeof(float));
    p += i;
  }
}

/* D = 16 and F <= 32 (DLRM Kaggle: F = 27): rows and accumulators are
 * 16-float vectors held in registers (GCC vector extension: one zmm on
 * AVX-512, two ymm on AVX2, four xmm otherwise; same per-lane arithmetic). */
typedef float v16f __attribute__((vector_size(64)));

CPU_INLINE void dot_fwd_sample16(const float *t, int F, float *o) {
  union { v16f v[2][16]; float f[2][16][16]; } tt; /* tt.f[h][d][j] = t[16h + j, d] */
  memset(&tt, 0, sizeof tt);
  for (int f = 0; f < F; f++)
    for (int d = 0; d < 16; d++) tt.f[f >> 4][d][f & 15] = t[f * 16 + d];
  memcpy(o, t, 16 * sizeof(float));
  int p = 16, end = 16 + F * (F - 1) / 2;
  for (int i = 1; i < F; i++) {
    const float *ti = t + i * 16;
    int nv = i > 16 ? 2 : 1;
    union { v16f v[2]; float f[32]; } acc = {{{0}, {0}}};
    for (int d = 0; d < 16; d++) acc.v[0] += ti[d] * tt.v[0][d];
    if (nv == 2)
      for (int d = 0; d < 16; d++) acc.v[1] += ti[d] * tt.v[1][d];
    /* whole-vector stores while they stay inside the row's pairs: lanes past
     * i land where the next rows' dots are written afterwards */
    if (p + 16 * nv <= end) {
      memcpy(o + p, &acc.v[0], sizeof(v16f));
      if (nv == 2) memcpy(o + p + 16, &acc.v[1], sizeof(v16f));
    } else {
      for (int j = 0; j < i; j++) o[p + j] = acc.f[j];
    }
    p += i;
  }
}

/* dT[i] = [i==0] g[0:16] + sum_{j<i} g_ij T[j] + sum_{j>i} g_ji T[j]; g_ij (j < i)
 * sits at 16 + i(i-1)/2 + j in the packed gradient. */
CPU_INLINE void dot_bwd_sample16(const float *g, const float *t, int F, float *dt) {
  v16f tv[32];
  memcpy(tv, t, (size_t)F * sizeof(v16f));
  for (int i = 0; i < F; i++) {
    v16f s = {0};
    if (i == 0) memcpy(&s, g, sizeof s);
    const float *gi = g + 16 + i * (i - 1) / 2;
    for (int j = 0; j < i; j++) s += gi[j] * tv[j];
    for (int j = i + 1; j < F; j++) s += g[16 + j * (j - 1) / 2 + i] * tv[j];
    memcpy(dt + i * 16, &s, sizeof s);
  }
}

CPU_INLINE void dot_fwd_rows_body(const float *T, int F, int D, float *out, int ldo, int b0,
                                  int b1, float *tt) {
  int Fp = pad16(F);
  float *acc = tt + (size_t)D * Fp;
  memset(tt, 0, (size_t)D * Fp * sizeof(float)); /* padding columns stay zero */
  for (int b = b0; b < b1; b++) {
    if (D == 16 && F <= 32)
      dot_fwd_sample16(T + (size_t)b * F * 16, F, out + (size_t)b * ldo);
    else if (D == 16)
      dot_fwd_sample(T + (size_t)b * F * 16, F, 16, out + (size_t)b * ldo, tt, acc);
    else
      dot_fwd_sample(T + (size_t)b * F * D, F, D, out + (size_t)b * ldo, tt, acc);
  }
}
CPU_MULTIVERSION(dot_fwd_rows,
                 (const float *T, int F, int D, float *out, int ldo, int b0, int b1, float *tt),
                 (T, F, D, out, ldo, b0, b1, tt))

CPU_INLINE void dot_bwd_sample(const float *g, const float *t, int F, int D, float *dt,
                               float *G) {
  int p = D;
  for (int i = 0; i < F; i++) G[(size_t)i * F + i] = 0.0f;
  for (int i = 1; i < F; i++)
    for (int j = 0; j < i; j++, p++) G[(size_t)i * F + j] = G[(size_t)j * F + i] = g[p];
  for (int i = 0; i < F; i++) {
    const float *gi = G + (size_t)i * F;
    float *dti = dt + (size_t)i * D;
    if (i == 0) {
      memcpy(dti, g, (size_t)D * sizeof(float));
    } else {
#pragma omp simd
      for (int d = 0; d < D; d++) dti[d] = 0.0f;
    }
    for (int j = 0; j < F; j++) {
      float gij = gi[j];
      const float *tj = t + (size_t)j * D;
#pragma omp simd
      for (int d = 0; d < D; d++) dti[d] += gij * tj[d];
    }
  }
}

CPU_INLINE void dot_bwd_rows_body(const float *dout, int ldo, const float *T, int F, int D,
                                  float *dT, int b0, int b1, float *G) {
  for (int b = b0; b < b1; b++) {
    if (D == 16 && F <= 32)
      dot_bwd_sample16(dout + (size_t)b * ldo, T + (size_t)b * F * 16, F,
                       dT + (size_t)b * F * 16);
    else if (D == 16)
      dot_bwd_sample(dout + (size_t)b * ldo, T + (size_t)b * F * 16, F, 16,
                     dT + (size_t)b * F * 16, G);
    else
      dot_bwd_sample(dout + (size_t)b * ldo, T + (size_t)b * F * D, F, D,
                     dT + (size_t)b * F * D, G);
  }
}
CPU_MULTIVERSION(dot_bwd_rows,
                 (const float *dout, int ldo, const float *T, int F, int D, float *dT, int b0,
                  int b1, float *G),
                 (dout, ldo, T, F, D, dT, b0, b1, G))

static int dot_threads(int B, int F, int D) {
  int nt = (size_t)B * F * F * D >= CPU_PAR_MIN ? cpu_max_threads() : 1;
  return nt > B ? (B > 0 ? B : 1) : nt;
}

void cpu_dot_interact_fwd(const float *T, int B, int F, int D, float *out, int ldo) {
  int nt = dot_threads(B, F, D);
#pragma omp parallel for schedule(static) if (nt > 1)
  for (int t = 0; t < nt; t++) {
    float *tt = cpu_scratch(CPU_SCRATCH_A, ((size_t)D + 1) * pad16(F) * sizeof(float));
    dot_fwd_rows(T, F, D, out, ldo, (int)((long long)B * t / nt),
                 (int)((long long)B * (t + 1) / nt), tt);
  }
}

void cpu_dot_interact_bwd(const float *dout, int ldo, const float *T, int B, int F, int D,
                          float *dT) {
  int nt = dot_threads(B, F, D);
#pragma omp parallel for schedule(static) if (nt > 1)
  for (int t = 0; t < nt; t++) {
    float *G = cpu_scratch(CPU_SCRATCH_A, (size_t)F * F * sizeof(float));
    dot_bwd_rows(dout, ldo, T, F, D, dT, (int)((long long)B * t / nt),
                 (int)((long long)B * (t + 1) / nt), G);
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

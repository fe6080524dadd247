/* Layer norm, L2 norm and row softmax, forward and backward. Rows are
 * independent (parallel over rows); per-row sums run in a fixed order. */
#include <math.h>
#include <omp.h>

#include "kernels/cpu/cpu_internal.h"

CPU_INLINE void ln_fwd_rows_body(const float *x, const float *w, const float *b, float *y,
                                 float *mean, float *rstd, int C, float eps, int r0, int r1) {
  for (int r = r0; r < r1; r++) {
    const float *xr = x + (size_t)r * C;
    float *yr = y + (size_t)r * C;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++) s += xr[c];
    float mu = s / C;
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) v += (xr[c] - mu) * (xr[c] - mu);
    float rs = 1.0f / sqrtf(v / C + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) yr[c] = (xr[c] - mu) * rs * w[c] + b[c];
    mean[r] = mu;
    rstd[r] = rs;
  }
}
CPU_MULTIVERSION(ln_fwd_rows,
                 (const float *x, const float *w, const float *b, float *y, float *mean,
                  float *rstd, int C, float eps, int r0, int r1),
                 (x, w, b, y, mean, rstd, C, eps, r0, r1))

void cpu_layernorm_fwd(const float *x, const float *w, const float *b, float *y, float *mean,
                       float *rstd, int N, int C, float eps) {
  int nt = (size_t)N * C >= CPU_PAR_MIN ? cpu_max_threads() : 1;
  if (nt > N) nt = N > 0 ? N : 1;
#pragma omp parallel for schedule(static) if (nt > 1)
  for (int t = 0; t < nt; t++)
    ln_fwd_rows(x, w, b, y, mean, rstd, C, eps, (int)((long long)N * t / nt),
                (int)((long long)N * (t + 1) / nt));
}

/* dx = rstd (dxh - mean(dxh) - xh mean(dxh xh)), dxh = dy w, xh = (x - mu) rstd.
 * dw, db: each thread sums a contiguous block of rows into its own partials,
 * combined in thread order afterwards (deterministic for a thread count). */
CPU_INLINE void ln_bwd_rows_body(const float *dy, const float *x, const float *w,
                                 const float *mean, const float *rstd, float *dx, float *pw,
                                 float *pb, int C, int acc, int r0, int r1) {
  for (int c = 0; c < C; c++) pw[c] = pb[c] = 0.0f;
  for (int r = r0; r < r1; r++) {
    const float *xr = x + (size_t)r * C, *dyr = dy + (size_t)r * C;
    float *dxr = dx + (size_t)r * C;
    float mu = mean[r], rs = rstd[r];
    float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
    for (int c = 0; c < C; c++) {
      float xh = (xr[c] - mu) * rs, g = dyr[c] * w[c];
      s1 += g;
      s2 += g * xh;
      pw[c] += dyr[c] * xh;
      pb[c] += dyr[c];
    }
    s1 /= C;
    s2 /= C;
    if (acc) {
#pragma omp simd
      for (int c = 0; c < C; c++) {
        float xh = (xr[c] - mu) * rs;
        dxr[c] += rs * (dyr[c] * w[c] - s1 - xh * s2);
      }
    } else {
#pragma omp simd
      for (int c = 0; c < C; c++) {
        float xh = (xr[c] - mu) * rs;
        dxr[c] = rs * (dyr[c] * w[c] - s1 - xh * s2);
      }
    }
  }
}
CPU_MULTIVERSION(ln_bwd_rows,
                 (const float *dy, const float *x, const float *w, const float *mean,
                  const float *rstd, float *dx, float *pw, float *pb, int C, int acc, int r0,
                  int r1),
                 (dy, x, w, mean, rstd, dx, pw, pb, C, acc, r0, r1))

void cpu_layernorm_bwd(const float *dy, const float *x, const float *w, const float *mean,
                       const float *rstd, float *dx, float *dw, float *db, int N, int C,
                       int accumulate_dx) {
  int nt = (size_t)N * C >= CPU_PAR_MIN ? cpu_max_threads() : 1;
  if (nt > N) nt = N > 0 ? N : 1;
  float *part = cpu_scratch(CPU_SCRATCH_A, (size_t)nt * 2 * C * sizeof(float));
  int used = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
#pragma omp single
    used = T;
    float *pw = part + (size_t)t * 2 * C, *pb = pw + C;
    int r0 = (int)((long long)N * t / T), r1 = (int)((long long)N * (t + 1) / T);
    ln_bwd_rows(dy, x, w, mean, rstd, dx, pw, pb, C, accumulate_dx, r0, r1);
  }
  for (int t = 0; t < used; t++) {
    const float *pw = part + (size_t)t * 2 * C, *pb = pw + C;
#pragma omp simd
    for (int c = 0; c < C; c++) {
      dw[c] += pw[c];
      db[c] += pb[c];
    }
  }
}

void cpu_l2norm_fwd(const float *x, float *y, float *norm, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int r = 0; r < N; r++) {
    const float *xr = x + (size_t)r * C;
    float *yr = y + (size_t)r * C;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++) s += xr[c] * xr[c];
    float nr = sqrtf(s);
    nr = nr > eps ? nr : eps;
    float inv = 1.0f / nr;
#pragma omp simd
    for (int c = 0; c < C; c++) yr[c] = xr[c] * inv;
    norm[r] = nr;
  }
}

/* Unclamped rows (||y|| = 1): dx = (dy - y <dy, y>) / norm. Rows whose norm was
 * clamped to eps have ||y|| < 1 and a constant divisor: dx = dy / norm. The
 * clamp is recognised from ||y||^2 < 1 - 1e-4 (eps is not passed here). */
void cpu_l2norm_bwd(const float *dy, const float *y, const float *norm, float *dx, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int r = 0; r < N; r++) {
    const float *yr = y + (size_t)r * C, *dyr = dy + (size_t)r * C;
    float *dxr = dx + (size_t)r * C;
    float d = 0.0f, yy = 0.0f;
#pragma omp simd reduction(+ : d, yy)
    for (int c = 0; c < C; c++) {
      d += dyr[c] * yr[c];
      yy += yr[c] * yr[c];
    }
    if (yy < 1.0f - 1e-4f) d = 0.0f;
    float inv = 1.0f / norm[r];
#pragma omp simd
    for (int c = 0; c < C; c++) dxr[c] = (dyr[c] - yr[c] * d) * inv;
  }
}

CPU_INLINE void softmax_row_mv_body(float *y, int C) {
  float mx = cpu_row_max(y, C);
#pragma omp simd
  for (int c = 0; c < C; c++) y[c] = cpu_expf(y[c] - mx);
  float inv = 1.0f / cpu_row_sum(y, C);
#pragma omp simd
  for (int c = 0; c < C; c++) y[c] *= inv;
}
CPU_MULTIVERSION(softmax_row_mv, (float *y, int C), (y, C))

void cpu_softmax_row(float *y, int C) { softmax_row_mv(y, C); }

void cpu_softmax_fwd(const float *x, float *y, int N, int C) {
  if (C <= 0) return;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN / 4)
  for (int r = 0; r < N; r++) {
    if (y != x) memcpy(y + (size_t)r * C, x + (size_t)r * C, (size_t)C * sizeof(float));
    cpu_softmax_row(y + (size_t)r * C, C);
  }
}

/* dx = y (dy - <dy, y>) */
void cpu_softmax_bwd(const float *y, const float *dy, float *dx, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int r = 0; r < N; r++) {
    const float *yr = y + (size_t)r * C, *dyr = dy + (size_t)r * C;
    float *dxr = dx + (size_t)r * C;
    float d = 0.0f;
#pragma omp simd reduction(+ : d)
    for (int c = 0; c < C; c++) d += dyr[c] * yr[c];
#pragma omp simd
    for (int c = 0; c < C; c++) dxr[c] = yr[c] * (dyr[c] - d);
  }
}

/* AMP unscale/check and scale update, squared norms, clipping and the fused
 * optimizer updates (formulas of torch.optim, see ops.h). Updates are
 * element-wise, hence deterministic under any thread count; the squared norm
 * sums in double per thread block and combines the blocks in order. */
#include <float.h>
#include <math.h>
#include <omp.h>

#include "kernels/cpu/cpu_internal.h"

void cpu_amp_unscale_check(float *g, size_t n, const float *scale, int *found_inf) {
  /* PyTorch: inv_scale = 1/scale computed in double, then as float */
  float inv = (float)(1.0 / (double)*scale);
  int bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float v = g[i] * inv;
    g[i] = v;
    bad |= !(fabsf(v) <= FLT_MAX);
  }
  if (bad) *found_inf = 1;
}

void cpu_nonfinite_any(const float *x, size_t n, int *found) {
  int bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) bad |= !(fabsf(x[i]) <= FLT_MAX);
  if (bad) *found = 1;
}

void cpu_amp_update_scale(float *scale, int *tracker, const int *found_inf, float growth,
                          float backoff, int interval) {
  if (*found_inf) {
    *scale *= backoff;
    *tracker = 0;
  } else if (++*tracker >= interval) {
    *scale *= growth;
    *tracker = 0;
  }
}

void cpu_sumsq(const float *x, size_t n, float *acc) {
  enum { MAXT = 256 };
  double part[MAXT];
  int nt = n >= CPU_PAR_MIN ? cpu_max_threads() : 1;
  if (nt > MAXT) nt = MAXT;
  int used = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
#pragma omp single
    used = T;
    size_t i0 = n * t / T, i1 = n * (t + 1) / T;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
    part[t] = s;
  }
  double total = 0.0;
  for (int t = 0; t < used; t++) total += part[t];
  *acc = (float)((double)*acc + total);
}

void cpu_clip_by_norm(float *x, size_t n, const float *sumsq, float max_norm) {
  float coef = max_norm / (sqrtf(*sumsq) + 1e-6f);
  if (coef < 1.0f) cpu_scale(x, n, coef);
}

static inline int skipped(const int *skip) { return skip && *skip; }

/* Writes the half copy of updated parameters. */
static void write_half(void *half, cddp_dtype t, const float *p, size_t n) {
  if (half) cpu_cast(half, t, p, CDDP_F32, n);
}

/* torch.optim.SGD: g += wd p; buf = mu buf + g; g = nesterov ? g + mu buf : buf;
 * p -= lr g. (buf starts at zero, so the first step gives buf = g as in torch.) */
void cpu_sgd_update(float *p, const float *g, float *mom, size_t n, float lr, float momentum,
                    int nesterov, float wd, const int *skip, void *half, cddp_dtype half_t) {
  if (skipped(skip)) return;
  if (momentum != 0.0f) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
      float d = g[i] + wd * p[i];
      float b = momentum * mom[i] + d;
      mom[i] = b;
      float dn = d + momentum * b;
      d = nesterov ? dn : b;
      p[i] -= lr * d;
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
  }
  write_half(half, half_t, p, n);
}

/* torch.optim.AdamW: p *= 1 - lr wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), bc_i = 1 - beta_i^step. */
void cpu_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                      float beta1, float beta2, float eps, float wd, const int *step,
                      const int *skip, void *half, cddp_dtype half_t) {
  if (skipped(skip)) return;
  double bc1 = 1.0 - pow((double)beta1, *step), bc2 = 1.0 - pow((double)beta2, *step);
  float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  float decay = 1.0f - lr * wd, w1 = 1.0f - beta1;
  /* m is updated with torch's lerp(m, g, 1 - beta1) rounding */
  int lerp_lo = w1 < 0.5f;
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float gi = g[i], m0 = m[i];
    float ma = m0 + w1 * (gi - m0), mb = gi - (gi - m0) * (1.0f - w1);
    float mi = lerp_lo ? ma : mb;
    float vi = v[i] * beta2 + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    float pi = p[i] * decay;
    p[i] = pi - step_size * (mi / denom);
  }
  write_half(half, half_t, p, n);
}

/* torch.optim.Adagrad (lr_decay 0): g += wd p; sum += g^2; p -= lr g / (sqrt(sum) + eps) */
void cpu_adagrad_update(float *p, const float *g, float *sum, size_t n, float lr, float eps,
                        float wd, const int *skip, void *half, cddp_dtype half_t) {
  if (skipped(skip)) return;
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] + wd * p[i];
    float s = sum[i] + gi * gi;
    sum[i] = s;
    p[i] -= lr * (gi / (sqrtf(s) + eps));
  }
  write_half(half, half_t, p, n);
}

void cpu_step_advance(int *step, const int *skip) {
  if (!skipped(skip)) ++*step;
}

void cpu_sparse_sgd(float *table, int dim, const int32_t *ids, const float *rows, int n, float lr,
                    const int *skip) {
  if (skipped(skip)) return;
  /* ids are unique (coalesced), so rows are independent */
#pragma omp parallel for schedule(static) if ((size_t)n * dim >= CPU_PAR_MIN)
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0) continue;
    float *t = table + (size_t)ids[i] * dim;
    const float *r = rows + (size_t)i * dim;
#pragma omp simd
    for (int d = 0; d < dim; d++) t[d] -= lr * r[d];
  }
}

void cpu_sparse_adagrad(float *table, float *state, int dim, const int32_t *ids,
                        const float *rows, int n, float lr, float eps, const int *skip) {
  if (skipped(skip)) return;
#pragma omp parallel for schedule(static) if ((size_t)n * dim >= CPU_PAR_MIN)
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0) continue;
    float *t = table + (size_t)ids[i] * dim, *s = state + (size_t)ids[i] * dim;
    const float *r = rows + (size_t)i * dim;
#pragma omp simd
    for (int d = 0; d < dim; d++) {
      float sv = s[d] + r[d] * r[d];
      s[d] = sv;
      t[d] -= lr * (r[d] / (sqrtf(sv) + eps));
    }
  }
}

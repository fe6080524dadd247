/* AMP unscale/check and scale update, clipping and the fused optimizer
 * updates (torch.optim formulas, written as the CPU backend writes them).
 * The skip flag, the loss scale and the step count are read on the device:
 * no host sync. Updates are element-wise, hence deterministic. */
#include <cfloat>

#include "kernels/cuda/cuda_common.h"

#define GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static __global__ void unscale_check_kernel(float *g, size_t n, const float *scale, int *found_inf) {
  float inv = (float)(1.0 / (double)*scale); /* as PyTorch: reciprocal in double */
  int bad = 0;
  GRID_LOOP(i, n) {
    float v = g[i] * inv;
    g[i] = v;
    bad |= !(fabsf(v) <= FLT_MAX);
  }
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) *found_inf = 1; /* same value from every writer */
}

void cu_amp_unscale_check(float *g, size_t n, const float *scale, int *found_inf) {
  if (n == 0) return;
  unscale_check_kernel<<<cu_grid(n, 256), 256, 0, g_cu.compute>>>(g, n, scale, found_inf);
  cuLaunchCheck();
}

static __global__ void nonfinite_any_kernel(const float *x, size_t n, int *found) {
  int bad = 0;
  GRID_LOOP(i, n) bad |= !(fabsf(x[i]) <= FLT_MAX);
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) *found = 1;
}

void cu_nonfinite_any(const float *x, size_t n, int *found) {
  if (n == 0) return;
  nonfinite_any_kernel<<<cu_grid(n, 256), 256, 0, g_cu.compute>>>(x, n, found);
  cuLaunchCheck();
}

static __global__ void update_scale_kernel(float *scale, int *tracker, const int *found_inf,
                                           float growth, float backoff, int interval) {
  if (*found_inf) {
    *scale *= backoff;
    *tracker = 0;
  } else if (++*tracker >= interval) {
    *scale *= growth;
    *tracker = 0;
  }
}

void cu_amp_update_scale(float *scale, int *tracker, const int *found_inf, float growth,
                         float backoff, int interval) {
  cu_bind();
  update_scale_kernel<<<1, 1, 0, g_cu.compute>>>(scale, tracker, found_inf, growth, backoff, interval);
  cuLaunchCheck();
}

static __global__ void clip_kernel(float *x, size_t n, const float *sumsq, float max_norm) {
  float coef = max_norm / (sqrtf(*sumsq) + 1e-6f);
  if (!(coef < 1.0f)) return;
  GRID_LOOP(i, n) x[i] *= coef;
}

void cu_clip_by_norm(float *x, size_t n, const float *sumsq, float max_norm) {
  if (n == 0) return;
  clip_kernel<<<cu_grid(n, 256), 256, 0, g_cu.compute>>>(x, n, sumsq, max_norm);
  cuLaunchCheck();
}

__device__ __forceinline__ int skipped(const int *skip) { return skip && *skip; }

static __global__ void sgd_kernel(float *p, const float *g, float *mom, size_t n, float lr,
                                  float momentum, int nesterov, float wd, const int *skip,
                                  void *half, cddp_dtype half_t) {
  if (skipped(skip)) return;
  GRID_LOOP(i, n) {
    float pi;
    if (momentum != 0.0f) {
      float d = g[i] + wd * p[i];
      float b = momentum * mom[i] + d;
      mom[i] = b;
      d = nesterov ? d + momentum * b : b;
      pi = p[i] - lr * d;
    } else {
      pi = p[i] - lr * (g[i] + wd * p[i]);
    }
    p[i] = pi;
    if (half) cu_store_as(half, half_t, i, pi);
  }
}

static __global__ void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n,
                                    float lr, float beta1, float beta2, float eps, float wd,
                                    const int *step, const int *skip, void *half,
                                    cddp_dtype half_t) {
  if (skipped(skip)) return;
  int st = *step;
  double bc1 = 1.0 - pow((double)beta1, st), bc2 = 1.0 - pow((double)beta2, st);
  float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  float decay = 1.0f - lr * wd, w1 = 1.0f - beta1;
  int lerp_lo = w1 < 0.5f; /* torch's lerp(m, g, 1 - beta1) rounding */
  GRID_LOOP(i, n) {
    float gi = g[i], m0 = m[i];
    float mi = lerp_lo ? m0 + w1 * (gi - m0) : gi - (gi - m0) * (1.0f - w1);
    float vi = v[i] * beta2 + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    float pi = p[i] * decay - step_size * (mi / denom);
    p[i] = pi;
    if (half) cu_store_as(half, half_t, i, pi);
  }
}

static __global__ void adagrad_kernel(float *p, const float *g, float *sum, size_t n, float lr,
                                      float eps, float wd, const int *skip, void *half,
                                      cddp_dtype half_t) {
  if (skipped(skip)) return;
  GRID_LOOP(i, n) {
    float gi = g[i] + wd * p[i];
    float s = sum[i] + gi * gi;
    sum[i] = s;
    float pi = p[i] - lr * (gi / (sqrtf(s) + eps));
    p[i] = pi;
    if (half) cu_store_as(half, half_t, i, pi);
  }
}

static void check_half(const void *half, cddp_dtype t) {
  if (half && t != CDDP_F16 && t != CDDP_BF16 && t != CDDP_F32)
    cddp_die(CDDP_EXIT_USAGE, "optimizer: unsupported half-copy type %s", cddp_dtype_name(t));
}

void cu_sgd_update(float *p, const float *g, float *mom, size_t n, float lr, float momentum,
                   int nesterov, float wd, const int *skip, void *half, cddp_dtype half_t) {
  if (n == 0) return;
  check_half(half, half_t);
  sgd_kernel<<<cu_grid(n, 256), 256, 0, g_cu.compute>>>(p, g, mom, n, lr, momentum, nesterov, wd,
                                                        skip, half, half_t);
  cuLaunchCheck();
}

void cu_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                     float beta1, float beta2, float eps, float wd, const int *step,
                     const int *skip, void *half, cddp_dtype half_t) {
  if (n == 0) return;
  check_half(half, half_t);
  adamw_kernel<<<cu_grid(n, 256), 256, 0, g_cu.compute>>>(p, g, m, v, n, lr, beta1, beta2, eps, wd,
                                                          step, skip, half, half_t);
  cuLaunchCheck();
}

void cu_adagrad_update(float *p, const float *g, float *sum, size_t n, float lr, float eps,
                       float wd, const int *skip, void *half, cddp_dtype half_t) {
  if (n == 0) return;
  check_half(half, half_t);
  adagrad_kernel<<<cu_grid(n, 256), 256, 0, g_cu.compute>>>(p, g, sum, n, lr, eps, wd, skip, half,
                                                            half_t);
  cuLaunchCheck();
}

static __global__ void step_advance_kernel(int *step, const int *skip) {
  if (!skipped(skip)) ++*step;
}

void cu_step_advance(int *step, const int *skip) {
  cu_bind();
  step_advance_kernel<<<1, 1, 0, g_cu.compute>>>(step, skip);
  cuLaunchCheck();
}

/* ids are unique (coalesced): rows are independent, no atomics needed. */
static __global__ void sparse_sgd_kernel(float *table, int dim, const int32_t *ids,
                                         const float *rows, int n, float lr, const int *skip) {
  if (skipped(skip)) return;
  size_t total = (size_t)n * dim;
  GRID_LOOP(k, total) {
    size_t i = k / dim, d = k % dim;
    int id = ids[i];
    if (id < 0) continue;
    table[(size_t)id * dim + d] -= lr * rows[k];
  }
}

static __global__ void sparse_adagrad_kernel(float *table, float *state, int dim,
                                             const int32_t *ids, const float *rows, int n,
                                             float lr, float eps, const int *skip) {
  if (skipped(skip)) return;
  size_t total = (size_t)n * dim;
  GRID_LOOP(k, total) {
    size_t i = k / dim, d = k % dim;
    int id = ids[i];
    if (id < 0) continue;
    size_t t = (size_t)id * dim + d;
    float r = rows[k];
    float sv = state[t] + r * r;
    state[t] = sv;
    table[t] -= lr * (r / (sqrtf(sv) + eps));
  }
}

void cu_sparse_sgd(float *table, int dim, const int32_t *ids, const float *rows, int n, float lr,
                   const int *skip) {
  if (n <= 0 || dim <= 0) return;
  sparse_sgd_kernel<<<cu_grid((size_t)n * dim, 256), 256, 0, g_cu.compute>>>(table, dim, ids, rows,
                                                                             n, lr, skip);
  cuLaunchCheck();
}

void cu_sparse_adagrad(float *table, float *state, int dim, const int32_t *ids,
                       const float *rows, int n, float lr, float eps, const int *skip) {
  if (n <= 0 || dim <= 0) return;
  sparse_adagrad_kernel<<<cu_grid((size_t)n * dim, 256), 256, 0, g_cu.compute>>>(
      table, state, dim, ids, rows, n, lr, eps, skip);
  cuLaunchCheck();
}

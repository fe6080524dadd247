/* Elementwise ops: activations, fill/scale/axpy/add, row scaling, 2-D copies and casts.
 * Grid-stride loops over size_t indices. */
#include "kernels/cuda/cuda_common.h"

#define GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static __global__ void act_fwd_kernel(cddp_act act, const float *x, float *y, size_t n) {
  GRID_LOOP(i, n) y[i] = cu_act(act, x[i]);
}
static __global__ void act_bwd_kernel(cddp_act act, const float *pre, const float *dy, float *dx,
                                      size_t n) {
  GRID_LOOP(i, n) {
    float x = pre[i], g;
    if (act == CDDP_ACT_RELU) g = x > 0.0f ? 1.0f : 0.0f;
    else if (act == CDDP_ACT_GELU) g = cu_gelu_grad(x);
    else g = 1.0f;
    dx[i] = dy[i] * g;
  }
}
static __global__ void fill_kernel(float *x, size_t n, float v) { GRID_LOOP(i, n) x[i] = v; }
static __global__ void scale_kernel(float *x, size_t n, float a) { GRID_LOOP(i, n) x[i] *= a; }
static __global__ void axpy_kernel(float *y, const float *x, size_t n, float a) {
  GRID_LOOP(i, n) y[i] += a * x[i];
}
static __global__ void add_kernel(float *out, const float *a, const float *b, size_t n) {
  GRID_LOOP(i, n) out[i] = a[i] + b[i];
}
static __global__ void scale_rows_kernel(float *x, int ld, int rows, int cols, const float *f) {
  size_t total = (size_t)rows * cols;
  GRID_LOOP(i, total) {
    size_t r = i / cols, c = i % cols;
    x[r * ld + c] *= f[r];
  }
}
static __global__ void copy2d_kernel(float *dst, int ldd, const float *src, int lds, int rows,
                                     int cols) {
  size_t total = (size_t)rows * cols;
  GRID_LOOP(i, total) {
    size_t r = i / cols, c = i % cols;
    dst[r * ldd + c] = src[r * lds + c];
  }
}
static __global__ void cast_kernel(void *dst, cddp_dtype dt, const void *src, cddp_dtype st,
                                   size_t n) {
  GRID_LOOP(i, n) cu_store_as(dst, dt, i, cu_load_as(src, st, i));
}

#define LAUNCH1(kernel, n, ...)                                                   \
  do {                                                                            \
    if ((n) == 0) return;                                                         \
    kernel<<<cu_grid((n), 256), 256, 0, g_cu.compute>>>(__VA_ARGS__);             \
    cuLaunchCheck();                                                              \
  } while (0)

void cu_act_fwd(cddp_act act, const float *x, float *y, size_t n) {
  LAUNCH1(act_fwd_kernel, n, act, x, y, n);
}
void cu_act_bwd(cddp_act act, const float *pre, const float *dy, float *dx, size_t n) {
  LAUNCH1(act_bwd_kernel, n, act, pre, dy, dx, n);
}
/* Two kernels: on the GPU the column sum is a separate reduction anyway. */
void cu_act_bias_bwd(cddp_act act, const float *pre, const float *dy, float *dx, int m, int n,
                     float *db) {
  if (m <= 0 || n <= 0) return;
  cu_act_bwd(act, pre, dy, dx, (size_t)m * n);
  if (db) cu_bias_grad(dx, m, n, n, db);
}
void cu_fill(float *x, size_t n, float v) { LAUNCH1(fill_kernel, n, x, n, v); }
void cu_scale(float *x, size_t n, float alpha) { LAUNCH1(scale_kernel, n, x, n, alpha); }
void cu_axpy(float *y, const float *x, size_t n, float alpha) { LAUNCH1(axpy_kernel, n, y, x, n, alpha); }
void cu_add(float *out, const float *a, const float *b, size_t n) { LAUNCH1(add_kernel, n, out, a, b, n); }
void cu_scale_rows(float *x, int ld, int rows, int cols, const float *f) {
  size_t total = (size_t)(rows > 0 ? rows : 0) * (size_t)(cols > 0 ? cols : 0);
  LAUNCH1(scale_rows_kernel, total, x, ld, rows, cols, f);
}
void cu_copy2d(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
  size_t total = (size_t)(rows > 0 ? rows : 0) * (size_t)(cols > 0 ? cols : 0);
  LAUNCH1(copy2d_kernel, total, dst, ldd, src, lds, rows, cols);
}
void cu_cast(void *dst, cddp_dtype dst_t, const void *src, cddp_dtype src_t, size_t n) {
  for (cddp_dtype t : {dst_t, src_t})
    if (t != CDDP_F32 && t != CDDP_F16 && t != CDDP_BF16)
      cddp_die(CDDP_EXIT_USAGE, "cast: unsupported type %s", cddp_dtype_name(t));
  if (n == 0) return;
  cu_bind();
  if (dst_t == src_t) {
    cudaCheck(cudaMemcpyAsync(dst, src, n * cddp_dtype_size(dst_t), cudaMemcpyDeviceToDevice,
                              g_cu.compute));
    return;
  }
  LAUNCH1(cast_kernel, n, dst, dst_t, src, src_t, n);
}

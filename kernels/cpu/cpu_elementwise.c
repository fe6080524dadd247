/* Elementwise ops and strided copies. */
#include "kernels/cpu/cpu_internal.h"

void cpu_fill(float *x, size_t n, float v) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) x[i] = v;
}

void cpu_scale(float *x, size_t n, float alpha) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

void cpu_axpy(float *y, const float *x, size_t n, float alpha) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

/* out may alias a or b: element i reads only a[i], b[i] before writing */
CPU_INLINE void add_range_body(float *out, const float *a, const float *b, size_t i0, size_t i1) {
#pragma omp simd
  for (size_t i = i0; i < i1; i++) out[i] = a[i] + b[i];
}
CPU_MULTIVERSION(add_range, (float *out, const float *a, const float *b, size_t i0, size_t i1),
                 (out, a, b, i0, i1))

void cpu_add(float *out, const float *a, const float *b, size_t n) {
  enum { BLK = 16384 };
  size_t nblk = (n + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN && nblk > 1)
  for (size_t bk = 0; bk < nblk; bk++)
    add_range(out, a, b, bk * BLK, n < (bk + 1) * BLK ? n : (bk + 1) * BLK);
}

void cpu_scale_rows(float *x, int ld, int rows, int cols, const float *f) {
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= CPU_PAR_MIN)
  for (int r = 0; r < rows; r++) {
    float a = f[r], *xr = x + (size_t)r * ld;
#pragma omp simd
    for (int c = 0; c < cols; c++) xr[c] *= a;
  }
}

void cpu_copy2d(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return;
  if (ldd == cols && lds == cols) {
    memcpy(dst, src, (size_t)rows * cols * sizeof(float));
    return;
  }
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= CPU_PAR_MIN)
  for (int r = 0; r < rows; r++)
    memcpy(dst + (size_t)r * ldd, src + (size_t)r * lds, (size_t)cols * sizeof(float));
}

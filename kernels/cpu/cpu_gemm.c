/* GEMM on OpenBLAS with a fused bias/activation epilogue, the bias gradient
 * and the standalone activations.
 *
 * Half inputs (F16/BF16) are widened to fp32 into per-thread scratch and
 * multiplied with sgemm: the products of half values are exact in fp32, so
 * this equals a half GEMM with fp32 accumulation up to summation order. */
#include <cblas.h>

#include "core/error.h"
#include "kernels/cpu/cpu_internal.h"

/* Widens a rows x cols block with leading dimension ld into a contiguous
 * fp32 buffer. */
static const float *widen(const void *src, cddp_dtype t, int rows, int cols, int ld, int slot) {
  float *dst = cpu_scratch(slot, (size_t)rows * cols * sizeof(float));
  size_t es = cddp_dtype_size(t);
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= CPU_PAR_MIN)
  for (int r = 0; r < rows; r++)
    cpu_to_f32(dst + (size_t)r * cols, (const char *)src + (size_t)r * ld * es, t, cols);
  return dst;
}

static void epilogue_row(float *c, const float *bias, cddp_act act, float *pre, int n) {
  if (bias) {
#pragma omp simd
    for (int j = 0; j < n; j++) c[j] += bias[j];
  }
  if (pre) memcpy(pre, c, (size_t)n * sizeof(float));
  if (act == CDDP_ACT_RELU) {
#pragma omp simd
    for (int j = 0; j < n; j++) c[j] = c[j] > 0.0f ? c[j] : 0.0f;
  } else if (act == CDDP_ACT_GELU) {
#pragma omp simd
    for (int j = 0; j < n; j++) c[j] = cpu_gelu(c[j]);
  }
}

void cpu_gemm(const cddp_gemm_args *a) {
  int m = a->m, n = a->n, k = a->k;
  if (m <= 0 || n <= 0) return;
  if (a->ab_type != CDDP_F32 && a->ab_type != CDDP_F16 && a->ab_type != CDDP_BF16)
    cddp_die(CDDP_EXIT_USAGE, "gemm: unsupported input type %s", cddp_dtype_name(a->ab_type));
  const float *A = a->A, *B = a->B;
  int lda = a->lda, ldb = a->ldb;
  if (a->ab_type != CDDP_F32 && k > 0) {
    int ar = a->transa ? k : m, ac = a->transa ? m : k;
    int br = a->transb ? n : k, bc = a->transb ? k : n;
    A = widen(a->A, a->ab_type, ar, ac, lda, CPU_SCRATCH_A);
    B = widen(a->B, a->ab_type, br, bc, ldb, CPU_SCRATCH_B);
    lda = ac;
    ldb = bc;
  }
  if (k > 0) {
    cblas_sgemm(CblasRowMajor, a->transa ? CblasTrans : CblasNoTrans,
                a->transb ? CblasTrans : CblasNoTrans, m, n, k, a->alpha, A, lda, B, ldb, a->beta,
                a->C, a->ldc);
  } else {
    /* k == 0: C = beta C (BLAS would do the same; spelled out for clarity) */
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++)
        a->C[(size_t)i * a->ldc + j] = a->beta == 0.0f ? 0.0f : a->beta * a->C[(size_t)i * a->ldc + j];
  }
  if (!a->bias && a->act == CDDP_ACT_NONE && !a->pre_act) return;
#pragma omp parallel for schedule(static) if ((size_t)m * n >= CPU_PAR_MIN / 4)
  for (int i = 0; i < m; i++)
    epilogue_row(a->C + (size_t)i * a->ldc, a->bias, a->act,
                 a->pre_act ? a->pre_act + (size_t)i * n : NULL, n);
}

/* db[j] += sum_i dy[i, j]: column blocks are independent, rows are summed in
 * order, so the result does not depend on the thread count. */
void cpu_bias_grad(const float *dy, int m, int n, int ldy, float *db) {
  enum { BLK = 256 };
  int nblk = (n + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if ((size_t)m * n >= CPU_PAR_MIN && nblk > 1)
  for (int bk = 0; bk < nblk; bk++) {
    int j0 = bk * BLK, len = n - j0 < BLK ? n - j0 : BLK;
    float acc[BLK];
    for (int j = 0; j < len; j++) acc[j] = 0.0f;
    for (int i = 0; i < m; i++) {
      const float *row = dy + (size_t)i * ldy + j0;
#pragma omp simd
      for (int j = 0; j < len; j++) acc[j] += row[j];
    }
    for (int j = 0; j < len; j++) db[j0 + j] += acc[j];
  }
}

void cpu_act_fwd(cddp_act act, const float *x, float *y, size_t n) {
  if (act == CDDP_ACT_RELU) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  } else if (act == CDDP_ACT_GELU) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN / 8)
    for (size_t i = 0; i < n; i++) y[i] = cpu_gelu(x[i]);
  } else if (x != y) {
    memcpy(y, x, n * sizeof(float));
  }
}

void cpu_act_bwd(cddp_act act, const float *pre, const float *dy, float *dx, size_t n) {
  if (act == CDDP_ACT_RELU) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
      float d = dy[i]; /* unconditional load: a select, not a branch */
      dx[i] = pre[i] > 0.0f ? d : 0.0f;
    }
  } else if (act == CDDP_ACT_GELU) {
#pragma omp parallel for simd schedule(static) if (n >= CPU_PAR_MIN / 8)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * cpu_gelu_grad(pre[i]);
  } else if (dx != dy) {
    memcpy(dx, dy, n * sizeof(float));
  }
}

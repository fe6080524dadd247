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

/* Rows [r0, r1) of C: c += bias; pre = c; c = act(c). With from_pre the GEMM
 * wrote its result (bias included) into pre, and only c = act(pre) is left. */
CPU_INLINE void epilogue_rows_body(float *C, int ldc, const float *bias, cddp_act act,
                                   float *pre_all, int from_pre, int n, int r0, int r1) {
  for (int i = r0; i < r1; i++) {
    float *c = C + (size_t)i * ldc;
    float *pre = pre_all ? pre_all + (size_t)i * n : NULL;
    if (from_pre) { /* the common ViT case: GELU of the saved pre-activation */
#pragma omp simd
      for (int j = 0; j < n; j++) c[j] = cpu_gelu(pre[j]);
      continue;
    }
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
}
CPU_MULTIVERSION(epilogue_rows,
                 (float *C, int ldc, const float *bias, cddp_act act, float *pre_all, int from_pre,
                  int n, int r0, int r1),
                 (C, ldc, bias, act, pre_all, from_pre, n, r0, r1))

/* Rows of the GEMM's output D (ld ldd) before sgemm accumulates onto them
 * with beta 1: the bias, the residual, or their sum. This replaces BLAS's
 * zero fill of D and a separate bias or residual pass. bias + acc rounds
 * like acc + bias (addition commutes); only when BLAS splits k into panels
 * is the bias added earlier. */
static void init_rows(float *D, int ldd, const float *res, int ldr, const float *bias, int m,
                      int n) {
#pragma omp parallel for schedule(static) if ((size_t)m * n >= CPU_PAR_MIN)
  for (int i = 0; i < m; i++) {
    float *d = D + (size_t)i * ldd;
    const float *r = res ? res + (size_t)i * ldr : NULL;
    if (r && bias) {
#pragma omp simd
      for (int j = 0; j < n; j++) d[j] = r[j] + bias[j];
    } else if (r || bias) {
      if (d != (r ? r : bias)) memcpy(d, r ? r : bias, (size_t)n * sizeof(float));
    }
  }
}

void cpu_gemm(const cddp_gemm_args *a) {
  int m = a->m, n = a->n, k = a->k;
  if (m <= 0 || n <= 0) return;
  if (a->ab_type != CDDP_F32 && a->ab_type != CDDP_F16 && a->ab_type != CDDP_BF16)
    cddp_die(CDDP_EXIT_USAGE, "gemm: unsupported input type %s", cddp_dtype_name(a->ab_type));
  if (a->residual && a->beta != 0.0f)
    cddp_die(CDDP_EXIT_USAGE, "gemm: a residual takes the place of beta*C (beta %g)", a->beta);
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
  const float *bias = a->bias;
  float beta = a->beta;
  /* GELU with a saved pre-activation: the GEMM writes pre (bias included)
   * and the epilogue only reads it, instead of copying C into pre. */
  int from_pre = a->pre_act && a->act == CDDP_ACT_GELU && beta == 0.0f && !a->residual;
  float *D = from_pre ? a->pre_act : a->C;
  int ldd = from_pre ? n : a->ldc;
  if (a->residual || (bias && beta == 0.0f) || from_pre) {
    init_rows(D, ldd, a->residual, a->ldc, bias, m, n);
    beta = (a->residual || bias) ? 1.0f : 0.0f;
    bias = NULL;
  }
  if (k > 0) {
    cblas_sgemm(CblasRowMajor, a->transa ? CblasTrans : CblasNoTrans,
                a->transb ? CblasTrans : CblasNoTrans, m, n, k, a->alpha, A, lda, B, ldb, beta, D,
                ldd);
  } else {
    /* k == 0: D = beta D (BLAS would do the same; spelled out for clarity) */
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++)
        D[(size_t)i * ldd + j] = beta == 0.0f ? 0.0f : beta * D[(size_t)i * ldd + j];
  }
  if (!bias && a->act == CDDP_ACT_NONE && !a->pre_act) return;
  int nt = (size_t)m * n >= CPU_PAR_MIN / 4 ? cpu_max_threads() : 1;
  if (nt > m) nt = m;
#pragma omp parallel for schedule(static) if (nt > 1)
  for (int t = 0; t < nt; t++)
    epilogue_rows(a->C, a->ldc, bias, a->act, a->pre_act, from_pre, n,
                  (int)((long long)m * t / nt), (int)((long long)m * (t + 1) / nt));
}

/* db[j] += sum_i dy[i, j]: column blocks are independent, rows are summed in
 * order, so the result does not depend on the thread count (or the ISA). */
enum { BG_BLK = 256 };
CPU_INLINE void bias_grad_block_body(const float *dy, int m, int ldy, float *db, int j0, int len) {
  float acc[BG_BLK];
  for (int j = 0; j < len; j++) acc[j] = 0.0f;
  for (int i = 0; i < m; i++) {
    const float *row = dy + (size_t)i * ldy + j0;
#pragma omp simd
    for (int j = 0; j < len; j++) acc[j] += row[j];
  }
  for (int j = 0; j < len; j++) db[j0 + j] += acc[j];
}
CPU_MULTIVERSION(bias_grad_block, (const float *dy, int m, int ldy, float *db, int j0, int len),
                 (dy, m, ldy, db, j0, len))

void cpu_bias_grad(const float *dy, int m, int n, int ldy, float *db) {
  int nblk = (n + BG_BLK - 1) / BG_BLK;
#pragma omp parallel for schedule(static) if ((size_t)m * n >= CPU_PAR_MIN && nblk > 1)
  for (int bk = 0; bk < nblk; bk++) {
    int j0 = bk * BG_BLK, len = n - j0 < BG_BLK ? n - j0 : BG_BLK;
    bias_grad_block(dy, m, ldy, db, j0, len);
  }
}

/* Elementwise activations run in blocks of ACT_BLK elements: a block is the
 * unit of parallel work and of ISA dispatch. */
enum { ACT_BLK = 8192 };
CPU_INLINE void act_fwd_range_body(cddp_act act, const float *x, float *y, size_t i0, size_t i1) {
  if (act == CDDP_ACT_RELU) {
#pragma omp simd
    for (size_t i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  } else {
#pragma omp simd
    for (size_t i = i0; i < i1; i++) y[i] = cpu_gelu(x[i]);
  }
}
CPU_MULTIVERSION(act_fwd_range, (cddp_act act, const float *x, float *y, size_t i0, size_t i1),
                 (act, x, y, i0, i1))

CPU_INLINE void act_bwd_range_body(cddp_act act, const float *pre, const float *dy, float *dx,
                                   size_t i0, size_t i1) {
  if (act == CDDP_ACT_RELU) {
#pragma omp simd
    for (size_t i = i0; i < i1; i++) {
      float d = dy[i]; /* unconditional load: a select, not a branch */
      dx[i] = pre[i] > 0.0f ? d : 0.0f;
    }
  } else {
#pragma omp simd
    for (size_t i = i0; i < i1; i++) dx[i] = dy[i] * cpu_gelu_grad(pre[i]);
  }
}
CPU_MULTIVERSION(act_bwd_range,
                 (cddp_act act, const float *pre, const float *dy, float *dx, size_t i0,
                  size_t i1),
                 (act, pre, dy, dx, i0, i1))

static size_t act_par_min(cddp_act act) {
  return act == CDDP_ACT_GELU ? CPU_PAR_MIN / 8 : CPU_PAR_MIN;
}

void cpu_act_fwd(cddp_act act, const float *x, float *y, size_t n) {
  if (act == CDDP_ACT_RELU || act == CDDP_ACT_GELU) {
    size_t nblk = (n + ACT_BLK - 1) / ACT_BLK;
#pragma omp parallel for schedule(static) if (n >= act_par_min(act) && nblk > 1)
    for (size_t bk = 0; bk < nblk; bk++)
      act_fwd_range(act, x, y, bk * ACT_BLK, n < (bk + 1) * ACT_BLK ? n : (bk + 1) * ACT_BLK);
  } else if (x != y) {
    memcpy(y, x, n * sizeof(float));
  }
}

void cpu_act_bwd(cddp_act act, const float *pre, const float *dy, float *dx, size_t n) {
  if (act == CDDP_ACT_RELU || act == CDDP_ACT_GELU) {
    size_t nblk = (n + ACT_BLK - 1) / ACT_BLK;
#pragma omp parallel for schedule(static) if (n >= act_par_min(act) && nblk > 1)
    for (size_t bk = 0; bk < nblk; bk++)
      act_bwd_range(act, pre, dy, dx, bk * ACT_BLK,
                    n < (bk + 1) * ACT_BLK ? n : (bk + 1) * ACT_BLK);
  } else if (dx != dy) {
    memcpy(dx, dy, n * sizeof(float));
  }
}

/* act_bwd and bias_grad in one pass over the rows: each dx element is
 * computed as act_bwd computes it and summed into acc[j] in row order as
 * bias_grad sums it, so the bits equal the two-pass path. Whole rows keep the
 * three streams sequential (column blocks would re-read them strided). One
 * thread only: with several, the two-pass path (parallel over elements and
 * column blocks) is used. */
/* Four rows per sweep: acc[j] is loaded and stored once per four rows (the
 * store port, not arithmetic, bounds the ReLU case) while the four additions
 * keep row order. ACT_GRAD is expanded once per activation so that a
 * vectorised loop never evaluates both. */
#define ACT_BIAS_ROWS(ACT_GRAD)                                                 \
  do {                                                                          \
    int i = 0;                                                                  \
    for (; i + 4 <= m; i += 4) {                                                \
      size_t o = (size_t)i * n;                                                 \
      const float *p = pre + o, *g = dy + o;                                    \
      float *d = dx + o;                                                        \
      _Pragma("omp simd") for (int j = 0; j < n; j++) {                         \
        float v0 = ACT_GRAD(p[j], g[j]), v1 = ACT_GRAD(p[n + j], g[n + j]);     \
        float v2 = ACT_GRAD(p[2 * n + j], g[2 * n + j]);                        \
        float v3 = ACT_GRAD(p[3 * n + j], g[3 * n + j]);                        \
        d[j] = v0;                                                              \
        d[n + j] = v1;                                                          \
        d[2 * n + j] = v2;                                                      \
        d[3 * n + j] = v3;                                                      \
        float a = acc[j];                                                       \
        a += v0;                                                                \
        a += v1;                                                                \
        a += v2;                                                                \
        a += v3;                                                                \
        acc[j] = a;                                                             \
      }                                                                         \
    }                                                                           \
    for (; i < m; i++) {                                                        \
      size_t o = (size_t)i * n;                                                 \
      _Pragma("omp simd") for (int j = 0; j < n; j++) {                         \
        float v = ACT_GRAD(pre[o + j], dy[o + j]);                              \
        dx[o + j] = v;                                                          \
        acc[j] += v;                                                            \
      }                                                                         \
    }                                                                           \
  } while (0)
#define RELU_GRAD(p, g) ((p) > 0.0f ? (g) : 0.0f) /* a select on an unconditional load */
#define GELU_GRAD(p, g) ((g) * cpu_gelu_grad(p))

CPU_INLINE void act_bias_bwd_rows_body(cddp_act act, const float *pre, const float *dy,
                                       float *dx, int m, int n, float *acc) {
  for (int j = 0; j < n; j++) acc[j] = 0.0f;
  if (act == CDDP_ACT_RELU)
    ACT_BIAS_ROWS(RELU_GRAD);
  else
    ACT_BIAS_ROWS(GELU_GRAD);
}
CPU_MULTIVERSION(act_bias_bwd_rows,
                 (cddp_act act, const float *pre, const float *dy, float *dx, int m, int n,
                  float *acc),
                 (act, pre, dy, dx, m, n, acc))

void cpu_act_bias_bwd(cddp_act act, const float *pre, const float *dy, float *dx, int m, int n,
                      float *db) {
  if (m <= 0 || n <= 0) return;
  int par = (size_t)m * n >= act_par_min(act) && cpu_max_threads() > 1;
  if (!db || par || (act != CDDP_ACT_RELU && act != CDDP_ACT_GELU)) {
    cpu_act_bwd(act, pre, dy, dx, (size_t)m * n);
    if (db) cpu_bias_grad(dx, m, n, n, db);
    return;
  }
  float *acc = cpu_scratch(CPU_SCRATCH_A, (size_t)n * sizeof(float));
  act_bias_bwd_rows(act, pre, dy, dx, m, n, acc);
  for (int j = 0; j < n; j++) db[j] += acc[j];
}

/* cuda-emu model of cuBLASLt, written from the cuBLAS documentation:
 * descriptors and layouts, the heuristic query and matmul with epilogues
 * (the arithmetic: gemm_ref.cpp):
 *  - the *_AUX epilogues need EPILOGUE_AUX_LD >= rows(D), divisible by 8 for
 *    GELU, by 128 for the ReLU bit mask;
 *  - the heuristic returns an algorithm only for a consistent, supported
 *    problem; cublasLtMatmul refuses an algorithm obtained for another
 *    problem, a workspace smaller than the algorithm's, and pointers less
 *    aligned than the preference promised.
 * Work runs on the stream, deferred like every other operation. */
#include <cstdlib>
#include <cstring>

#include <cublasLt.h>

#include "gemm_ref.h"
#include "internal.h"

using namespace cuemu;

namespace {
template <class T>
cublasStatus_t put(T *dst, const void *buf, size_t size) {
  if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
  memcpy(dst, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

int align_of(const void *p) {
  uintptr_t u = (uintptr_t)p;
  int a = 256;
  while (a > 1 && (u % (uintptr_t)a)) a >>= 1;
  return a;
}
} // namespace

struct cublasLtContext {
  int magic = 0x4c74;
};
struct cublasLtMatrixLayoutOpaque_t {
  cudaDataType type;
  uint64_t rows, cols;
  int64_t ld;
  int32_t order = CUBLASLT_ORDER_COL, batch = 1;
};
struct cublasLtMatmulDescOpaque_t {
  cublasComputeType_t compute;
  cudaDataType scale;
  int32_t pointer_mode = 0, ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  uint32_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  const void *bias = nullptr;
  void *aux = nullptr;
  int64_t aux_ld = 0;
  int32_t bias_type = -1, aux_type = -1;
};
struct cublasLtMatmulPreferenceOpaque_t {
  uint64_t max_ws = 0;
  uint32_t align[4] = {256, 256, 256, 256};
};


extern "C" {

/* ---- cuBLASLt ------------------------------------------------------------------- */
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  *h = new cublasLtContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
  if (!l || !type_size(type)) return CUBLAS_STATUS_INVALID_VALUE;
  *l = new cublasLtMatrixLayoutOpaque_t{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete l;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l,
                                                cublasLtMatrixLayoutAttribute_t a,
                                                const void *buf, size_t size) {
  if (!l) return CUBLAS_STATUS_NOT_INITIALIZED;
  switch (a) {
  case CUBLASLT_MATRIX_LAYOUT_TYPE: return put((uint32_t *)&l->type, buf, size);
  case CUBLASLT_MATRIX_LAYOUT_ORDER: return put(&l->order, buf, size);
  case CUBLASLT_MATRIX_LAYOUT_ROWS: return put(&l->rows, buf, size);
  case CUBLASLT_MATRIX_LAYOUT_COLS: return put(&l->cols, buf, size);
  case CUBLASLT_MATRIX_LAYOUT_LD: return put(&l->ld, buf, size);
  case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return put(&l->batch, buf, size);
  default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute,
                                        cudaDataType_t scale) {
  if (!d) return CUBLAS_STATUS_INVALID_VALUE;
  *d = new cublasLtMatmulDescOpaque_t{compute, scale};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete d;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t a, const void *buf,
                                              size_t size) {
  if (!d) return CUBLAS_STATUS_NOT_INITIALIZED;
  switch (a) {
  case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return put((int32_t *)&d->compute, buf, size);
  case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return put((int32_t *)&d->scale, buf, size);
  case CUBLASLT_MATMUL_DESC_POINTER_MODE: return put(&d->pointer_mode, buf, size);
  case CUBLASLT_MATMUL_DESC_TRANSA: return put(&d->ta, buf, size);
  case CUBLASLT_MATMUL_DESC_TRANSB: return put(&d->tb, buf, size);
  case CUBLASLT_MATMUL_DESC_EPILOGUE: return put(&d->epi, buf, size);
  case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return put(&d->bias, buf, size);
  case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return put(&d->aux, buf, size);
  case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return put(&d->aux_ld, buf, size);
  case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return put(&d->bias_type, buf, size);
  case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: return put(&d->aux_type, buf, size);
  default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
  if (!p) return CUBLAS_STATUS_INVALID_VALUE;
  *p = new cublasLtMatmulPreferenceOpaque_t;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete p;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a,
                                                    const void *buf, size_t size) {
  if (!p) return CUBLAS_STATUS_NOT_INITIALIZED;
  switch (a) {
  case CUBLASLT_MATMUL_PREF_SEARCH_MODE: return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return put(&p->max_ws, buf, size);
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return put(&p->align[0], buf, size);
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return put(&p->align[1], buf, size);
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return put(&p->align[2], buf, size);
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return put(&p->align[3], buf, size);
  default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

} /* extern "C" */

namespace {
/* The problem signature an algorithm is valid for (stored in algo.data). */
uint64_t signature(const cublasLtMatmulDescOpaque_t *d, const cublasLtMatrixLayoutOpaque_t *a,
                   const cublasLtMatrixLayoutOpaque_t *b, const cublasLtMatrixLayoutOpaque_t *c) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  mix((uint64_t)d->compute); mix((uint64_t)d->ta); mix((uint64_t)d->tb); mix(d->epi);
  for (auto *l : {a, b, c}) { mix(l->type); mix(l->rows); mix(l->cols); mix((uint64_t)l->ld); }
  return h;
}

/* Checks a cuBLASLt problem; on success fills m, n, k. */
cublasStatus_t check_lt(const cublasLtMatmulDescOpaque_t *d, const cublasLtMatrixLayoutOpaque_t *A,
                        const cublasLtMatrixLayoutOpaque_t *B, const cublasLtMatrixLayoutOpaque_t *C,
                        const cublasLtMatrixLayoutOpaque_t *D, int *m, int *n, int *k) {
  if (!d || !A || !B || !C || !D) return CUBLAS_STATUS_INVALID_VALUE;
  for (auto *l : {A, B, C, D}) {
    if (l->order != CUBLASLT_ORDER_COL || l->batch != 1) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (l->ld < (int64_t)(l->rows > 1 ? l->rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
  }
  uint64_t am = d->ta == CUBLAS_OP_N ? A->rows : A->cols, ak = d->ta == CUBLAS_OP_N ? A->cols : A->rows;
  uint64_t bk = d->tb == CUBLAS_OP_N ? B->rows : B->cols, bn = d->tb == CUBLAS_OP_N ? B->cols : B->rows;
  if (am != D->rows || bn != D->cols || ak != bk || C->rows != D->rows || C->cols != D->cols)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (d->ta == CUBLAS_OP_C || d->tb == CUBLAS_OP_C) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (d->pointer_mode != 0 || d->scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (C->type != D->type || !gemm_types_ok(A->type, B->type, D->type, d->compute))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  switch (d->epi) {
  case CUBLASLT_EPILOGUE_DEFAULT: case CUBLASLT_EPILOGUE_RELU: case CUBLASLT_EPILOGUE_BIAS:
  case CUBLASLT_EPILOGUE_RELU_BIAS: case CUBLASLT_EPILOGUE_GELU: case CUBLASLT_EPILOGUE_GELU_BIAS:
    break;
  case CUBLASLT_EPILOGUE_GELU_AUX: case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
    if (!d->aux || d->aux_ld < (int64_t)D->rows || d->aux_ld % 8) return CUBLAS_STATUS_INVALID_VALUE;
    break;
  case CUBLASLT_EPILOGUE_RELU_AUX: case CUBLASLT_EPILOGUE_RELU_AUX_BIAS:
    if (!d->aux || d->aux_ld < (int64_t)D->rows || d->aux_ld % 128) return CUBLAS_STATUS_INVALID_VALUE;
    break;
  default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if ((d->epi & CUBLASLT_EPILOGUE_BIAS) && !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
  if ((d->bias_type != -1 && d->bias_type != (int32_t)D->type) ||
      (d->aux_type != -1 && d->aux_type != (int32_t)D->type))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  *m = (int)D->rows;
  *n = (int)D->cols;
  *k = (int)ak;
  return CUBLAS_STATUS_SUCCESS;
}
} // namespace

extern "C" {

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d,
                                              cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                                              cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[],
                                              int *returned) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!pref || requested < 1 || !results || !returned) return CUBLAS_STATUS_INVALID_VALUE;
  *returned = 0;
  int m, n, k;
  cublasStatus_t st = check_lt(d, A, B, C, D, &m, &n, &k);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  /* An algorithm needs each matrix aligned to at least its element size;
   * the bias and aux pointers are inspected as they are (documented). */
  const cublasLtMatrixLayoutOpaque_t *ls[4] = {A, B, C, D};
  for (int i = 0; i < 4; i++)
    if (pref->align[i] < type_size(ls[i]->type)) return CUBLAS_STATUS_NOT_SUPPORTED;
  /* CUEMU_LT_HALF_LD_BYTES=N: no algorithm for fp16/bf16 A or B whose rows
   * are not N-byte multiples, to rehearse a caller's fallback for what some
   * cuBLASLt versions do (the real rule depends on version and GPU). */
  static const long half_ld = getenv("CUEMU_LT_HALF_LD_BYTES") ? atol(getenv("CUEMU_LT_HALF_LD_BYTES")) : 0;
  for (int i = 0; i < 2 && half_ld > 0; i++)
    if (type_size(ls[i]->type) == 2 && (ls[i]->ld * 2) % half_ld) return CUBLAS_STATUS_NOT_SUPPORTED;
  size_t es = type_size(D->type);
  if ((d->epi & CUBLASLT_EPILOGUE_BIAS) && (size_t)align_of(d->bias) < es) return CUBLAS_STATUS_NOT_SUPPORTED;
  if ((d->epi & 128) && (size_t)align_of(d->aux) < es) return CUBLAS_STATUS_NOT_SUPPORTED;
  cublasLtMatmulHeuristicResult_t r;
  memset(&r, 0, sizeof r);
  r.algo.data[0] = 0x63756c74ull; /* "cult": produced by this model */
  r.algo.data[1] = signature(d, A, B, D);
  for (int i = 0; i < 4; i++) r.algo.data[2 + i] = pref->align[i];
  /* split-k style partial sums in the workspace when it is big enough */
  size_t want = (size_t)m * (size_t)n * sizeof(float);
  r.workspaceSize = pref->max_ws >= want ? want : 0;
  r.algo.data[6] = r.workspaceSize;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.0f;
  results[0] = r;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t Ad, const void *B,
                              cublasLtMatrixLayout_t Bd, const void *beta, const void *C,
                              cublasLtMatrixLayout_t Cd, void *D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes,
                              cudaStream_t stream) {
  const char *fn = "cublasLtMatmul";
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!alpha || !beta || !algo) return CUBLAS_STATUS_INVALID_VALUE;
  int m, n, k;
  cublasStatus_t st = check_lt(d, Ad, Bd, Cd, Dd, &m, &n, &k);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (algo->data[0] != 0x63756c74ull || algo->data[1] != signature(d, Ad, Bd, Dd)) {
    report("%s: the algorithm was not obtained from cublasLtMatmulAlgoGetHeuristic for this "
           "problem (m=%d n=%d k=%d)", fn, m, n, k);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (ws_bytes < algo->data[6] || (algo->data[6] && range_kind(ws, algo->data[6]) != MEM_DEVICE)) {
    report("%s: workspace of %zu bytes at %p, the algorithm needs %llu bytes of device memory",
           fn, ws_bytes, ws, (unsigned long long)algo->data[6]);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const void *ptrs[4] = {A, B, C, D};
  const char *names[4] = {"A", "B", "C", "D"};
  for (int i = 0; i < 4; i++)
    if ((uint64_t)align_of(ptrs[i]) < algo->data[2 + i] && align_of(ptrs[i]) < 256) {
      report("%s: matrix %s at %p is less aligned than the %llu bytes the preference promised",
             fn, names[i], ptrs[i], (unsigned long long)algo->data[2 + i]);
      return CUBLAS_STATUS_INVALID_VALUE;
    }
  float be = *(const float *)beta;
  if (k > 0 && (!device_matrix(A, Ad->type, (long long)Ad->rows, (long long)Ad->cols, Ad->ld, fn, "A") ||
                !device_matrix(B, Bd->type, (long long)Bd->rows, (long long)Bd->cols, Bd->ld, fn, "B")))
    return CUBLAS_STATUS_INVALID_VALUE;
  if ((be != 0.0f && !device_matrix(C, Cd->type, m, n, Cd->ld, fn, "C")) ||
      !device_matrix(D, Dd->type, m, n, Dd->ld, fn, "D"))
    return CUBLAS_STATUS_INVALID_VALUE;
  size_t es = type_size(Dd->type);
  if ((d->epi & CUBLASLT_EPILOGUE_BIAS) && range_kind(d->bias, (size_t)m * es) != MEM_DEVICE) {
    report("%s: bias vector %p (%d elements) is not inside one device allocation", fn, d->bias, m);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if ((d->epi & CUBLASLT_EPILOGUE_GELU) && (d->epi & 128) &&
      !device_matrix(d->aux, Dd->type, m, n, d->aux_ld, fn, "aux"))
    return CUBLAS_STATUS_INVALID_VALUE;
  gemm_problem p{};
  p.m = m; p.n = n; p.k = k;
  p.ta = d->ta == CUBLAS_OP_T; p.tb = d->tb == CUBLAS_OP_T;
  p.tf32 = d->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  p.alpha = *(const float *)alpha; p.beta = be;
  p.A = A; p.B = B; p.C = C; p.D = D;
  p.at = Ad->type; p.bt = Bd->type; p.ct = Cd->type; p.dt = Dd->type;
  p.lda = Ad->ld; p.ldb = Bd->ld; p.ldc = Cd->ld; p.ldd = Dd->ld;
  p.epi = (int)d->epi;
  p.bias = d->bias;
  p.aux = d->aux;
  p.aux_ld = d->aux_ld;
  p.ws = algo->data[6] ? (float *)ws : nullptr;
  cudaError_t e = enqueue(stream, fn, [p]() {
    run_gemm(p);
    return 1;
  });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

} /* extern "C" */

/* cuda-emu model of classic cuBLAS: handles, status names, GemmEx and
 * GemmStridedBatchedEx (fp32/fp16/bf16 inputs, fp32 accumulation, host
 * pointer mode), run on the handle's stream, deferred like every other
 * operation. */
#include <cstring>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "gemm_ref.h"
#include "internal.h"

using namespace cuemu;

struct cublasContext {
  cudaStream_t stream = 0;
  void *ws = nullptr;
  size_t ws_bytes = 0;
  cublasPointerMode_t mode = CUBLAS_POINTER_MODE_HOST;
};

extern "C" {

const char *cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char *cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
  case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
  case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
  }
  return "unknown cuBLAS status";
}

/* ---- classic cuBLAS ------------------------------------------------------------ */
cublasStatus_t cublasCreate(cublasHandle_t *h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes && range_kind(ws, bytes) != MEM_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
  h->ws = ws;
  h->ws_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_NOT_SUPPORTED; /* not modelled */
  h->mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at,
                                          int lda, long long sA, const void *B, cudaDataType bt,
                                          int ldb, long long sB, const void *beta, void *C,
                                          cudaDataType ct, int ldc, long long sC, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  (void)algo;
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (transa == CUBLAS_OP_C || transb == CUBLAS_OP_C) return CUBLAS_STATUS_NOT_SUPPORTED;
  int arows = transa == CUBLAS_OP_N ? m : k, brows = transb == CUBLAS_OP_N ? k : n;
  if (lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!gemm_types_ok(at, bt, ct, compute)) return CUBLAS_STATUS_NOT_SUPPORTED;
  bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  if (!m || !n || !batch) return CUBLAS_STATUS_SUCCESS;
  float al = *(const float *)alpha, be = *(const float *)beta;
  int acols = transa == CUBLAS_OP_N ? k : m, bcols = transb == CUBLAS_OP_N ? n : k;
  for (int b = 0; b < batch; b += batch - 1 > 0 ? batch - 1 : 1) { /* first and last batch */
    const char *fn = "cublasGemmStridedBatchedEx";
    if ((k && (!device_matrix((const char *)A + b * sA * (long long)type_size(at), at, arows, acols, lda, fn, "A") ||
               !device_matrix((const char *)B + b * sB * (long long)type_size(bt), bt, brows, bcols, ldb, fn, "B"))) ||
        !device_matrix((char *)C + b * sC * (long long)type_size(ct), ct, m, n, ldc, fn, "C"))
      return CUBLAS_STATUS_INVALID_VALUE;
    if (batch == 1) break;
  }
  gemm_problem p{};
  p.m = m; p.n = n; p.k = k;
  p.ta = transa == CUBLAS_OP_T; p.tb = transb == CUBLAS_OP_T; p.tf32 = tf32;
  p.alpha = al; p.beta = be;
  p.at = at; p.bt = bt; p.ct = ct; p.dt = ct;
  p.lda = lda; p.ldb = ldb; p.ldc = ldc; p.ldd = ldc;
  p.epi = CUBLASLT_EPILOGUE_DEFAULT;
  cudaError_t e = enqueue(h->stream, "cublasGemmStridedBatchedEx", [=]() {
    for (int b = 0; b < batch; b++) {
      gemm_problem q = p;
      q.A = (const char *)A + b * sA * (long long)type_size(at);
      q.B = (const char *)B + b * sB * (long long)type_size(bt);
      q.C = q.D = (char *)C + b * sC * (long long)type_size(ct);
      run_gemm(q);
    }
    return 1;
  });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void *alpha, const void *A,
                            cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                            const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  return cublasGemmStridedBatchedEx(h, transa, transb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb,
                                    0, beta, C, ct, ldc, 0, 1, compute, algo);
}

} /* extern "C" */

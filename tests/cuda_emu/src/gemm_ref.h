/* cuda-emu: the reference GEMM that the cuBLAS and cuBLASLt models run
 * (gemm_ref.cpp), and the device-range check of their matrices. */
#ifndef CUEMU_GEMM_REF_H
#define CUEMU_GEMM_REF_H

#include <cstddef>

#include <cublas_api.h>
#include <library_types.h>

namespace cuemu {

/* Bytes of one element (0: a type the models do not know). */
size_t type_size(cudaDataType t);
/* What both libraries' GEMMs accept: A and B of one input type (fp32, fp16
 * or bf16), the output fp32 or that type, fp32 accumulation (FAST_TF32 only
 * with fp32 inputs). */
bool gemm_types_ok(cudaDataType a, cudaDataType b, cudaDataType out, cublasComputeType_t compute);

/* One column-major GEMM problem, fully described by value. */
struct gemm_problem {
  int m, n, k;
  bool ta, tb, tf32;
  float alpha, beta;
  const void *A, *B, *C;
  void *D;
  cudaDataType at, bt, ct, dt;
  long long lda, ldb, ldc, ldd;
  int epi; /* cublasLtEpilogue_t */
  const void *bias;
  void *aux;
  long long aux_ld;
  float *ws; /* m*n floats of workspace, or null */
};

/* D = alpha op(A) op(B) + beta C, then the epilogue (gemm_ref.cpp). */
void run_gemm(const gemm_problem &p);

/* Is [p, p + elements of a rows x cols matrix with ld) inside device memory?
 * Reports (naming fn and what) when not. */
bool device_matrix(const void *p, cudaDataType t, long long rows, long long cols, long long ld,
                   const char *fn, const char *what);

} // namespace cuemu

#endif

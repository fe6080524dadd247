/* cuda-emu reference GEMM of the cuBLAS and cuBLASLt models, written from
 * the cuBLAS documentation:
 *  - column-major: element (i, j) of a matrix with leading dimension ld is at
 *    i + j*ld; op(A) is m x k, op(B) k x n, C and D m x n;
 *  - D = alpha op(A) op(B) + beta C, C is not read when beta == 0;
 *  - epilogues: BIAS adds bias[i] (a vector of rows(D) elements, of D's type)
 *    to every column, then RELU / GELU apply; the *_AUX variants also store
 *    the value before the activation in the aux matrix (D's type; a bit mask
 *    for ReLU);
 *  - inputs in fp32, fp16 or bf16 with fp32 accumulation (FAST_TF32 rounds
 *    fp32 inputs to TF32 first). */
#include <cmath>
#include <cstring>
#include <vector>

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gemm_ref.h"
#include "internal.h"

namespace cuemu {

namespace {
float tf32_round(float x) { /* 10 explicit mantissa bits, round to nearest */
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  u = (u + 0x1000u) & ~0x1fffu;
  memcpy(&x, &u, 4);
  return x;
}
float load(const void *p, cudaDataType t, size_t i) {
  switch (t) {
  case CUDA_R_16F: return __half2float(((const __half *)p)[i]);
  case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
  case CUDA_R_64F: return (float)((const double *)p)[i];
  default: return ((const float *)p)[i];
  }
}
void store(void *p, cudaDataType t, size_t i, float v) {
  switch (t) {
  case CUDA_R_16F: ((__half *)p)[i] = __float2half_rn(v); break;
  case CUDA_R_16BF: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v); break;
  case CUDA_R_64F: ((double *)p)[i] = v; break;
  default: ((float *)p)[i] = v;
  }
}

float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

} // namespace

size_t type_size(cudaDataType t) {
  switch (t) {
  case CUDA_R_32F: return 4;
  case CUDA_R_64F: return 8;
  case CUDA_R_16F: case CUDA_R_16BF: return 2;
  default: return 0;
  }
}
bool gemm_types_ok(cudaDataType a, cudaDataType b, cudaDataType out, cublasComputeType_t compute) {
  bool input = a == CUDA_R_32F || a == CUDA_R_16F || a == CUDA_R_16BF;
  if (a != b || !input || !(out == CUDA_R_32F || out == a)) return false;
  return compute == CUBLAS_COMPUTE_32F || (compute == CUBLAS_COMPUTE_32F_FAST_TF32 && a == CUDA_R_32F);
}


void run_gemm(const gemm_problem &p) {
  const int m = p.m, n = p.n, k = p.k;
  std::vector<float> a((size_t)m * k), b((size_t)n * k);
  for (int i = 0; i < m; i++)
    for (int l = 0; l < k; l++) {
      float v = load(p.A, p.at, p.ta ? (size_t)l + (size_t)i * p.lda : (size_t)i + (size_t)l * p.lda);
      a[(size_t)i * k + l] = p.tf32 ? tf32_round(v) : v;
    }
  for (int j = 0; j < n; j++)
    for (int l = 0; l < k; l++) {
      float v = load(p.B, p.bt, p.tb ? (size_t)j + (size_t)l * p.ldb : (size_t)l + (size_t)j * p.ldb);
      b[(size_t)j * k + l] = p.tf32 ? tf32_round(v) : v;
    }
  std::vector<float> local;
  float *acc = p.ws;
  if (!acc) {
    local.resize((size_t)m * n);
    acc = local.data();
  }
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      const float *x = &a[(size_t)i * k], *y = &b[(size_t)j * k];
      float part[8] = {0, 0, 0, 0, 0, 0, 0, 0}; /* 8 partial sums (vectorisable) */
      int l = 0;
      for (; l + 8 <= k; l += 8)
        for (int v = 0; v < 8; v++) part[v] += x[l + v] * y[l + v];
      float s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      for (; l < k; l++) s += x[l] * y[l];
      acc[(size_t)i + (size_t)j * m] = s;
    }
  bool has_bias = p.epi & CUBLASLT_EPILOGUE_BIAS;
  bool relu = (p.epi & CUBLASLT_EPILOGUE_RELU) != 0, gelu = (p.epi & CUBLASLT_EPILOGUE_GELU) != 0;
  bool aux = (p.epi & 128) != 0;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      float v = p.alpha * acc[(size_t)i + (size_t)j * m];
      if (p.beta != 0.0f) v += p.beta * load(p.C, p.ct, (size_t)i + (size_t)j * p.ldc);
      if (has_bias) v += load(p.bias, p.dt, (size_t)i);
      if (aux && gelu) store(p.aux, p.dt, (size_t)i + (size_t)j * p.aux_ld, v);
      if (aux && relu) { /* bit mask: bit i of column j set where v > 0 */
        unsigned char *bits = (unsigned char *)p.aux + ((size_t)j * p.aux_ld + i) / 8;
        unsigned char bit = (unsigned char)(1u << (((size_t)j * p.aux_ld + i) % 8));
        *bits = v > 0.0f ? (*bits | bit) : (*bits & ~bit);
      }
      if (relu) v = v > 0.0f ? v : 0.0f;
      if (gelu) v = gelu_tanh(v);
      store(p.D, p.dt, (size_t)i + (size_t)j * p.ldd, v);
    }
}
bool device_matrix(const void *p, cudaDataType t, long long rows, long long cols, long long ld,
                   const char *fn, const char *what) {
  if (rows <= 0 || cols <= 0) return true;
  size_t bytes = ((size_t)ld * (size_t)(cols - 1) + (size_t)rows) * type_size(t);
  if (range_kind(p, bytes) == MEM_DEVICE) return true;
  report("%s: matrix %s at %p (%lld x %lld, ld %lld) is not inside one device allocation", fn,
         what, p, rows, cols, ld);
  return false;
}

} // namespace cuemu

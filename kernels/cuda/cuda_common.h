/* Shared declarations of the CUDA backend (kernels/cuda), C++ only.
 *
 * Every op of struct cddp_backend has one cu_* function, declared here from
 * the op list; backend.cu puts them in the table. The core headers are C without extern "C" guards, so they
 * are included inside an extern "C" block after every system/CUDA header (and
 * with `noreturn` mapped to the C++ attribute, which <stdnoreturn.h> does not
 * define in C++). */
#ifndef CDDP_KERNELS_CUDA_COMMON_H
#define CDDP_KERNELS_CUDA_COMMON_H

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define noreturn [[noreturn]]
extern "C" {
#include "core/dtype.h"
#include "core/error.h"
#include "core/log.h"
#include "core/ops.h"
}
#undef noreturn
#include "core/check_cuda.h"

/* Every kernel launch is followed by this (launch-configuration errors). */
#define cuLaunchCheck() cudaCheck(cudaGetLastError())

/* ---- backend state (backend.cu) ------------------------------------------ */
struct cu_state {
  int device;
  int sm_count;
  cudaStream_t compute, copy, comm;
  cublasLtHandle_t lt;
  cublasHandle_t blas;      /* strided-batched GEMMs (attention) */
  void *lt_ws;              /* cuBLASLt workspace, CU_LT_WS_BYTES */
  size_t lt_ws_bytes;
  void *scratch;            /* reduction partials, CU_SCRATCH_BYTES; compute stream only */
  size_t scratch_bytes;
  int tf32;                 /* fp32 GEMMs may use TF32 (CDDP_TF32=1) */
  int fused;                /* cuBLASLt epilogues allowed (CDDP_LT_FUSED, default 1) */
  int attn_cudnn;           /* fp16/bf16 attention through cuDNN (--attention cudnn) */
};
extern cu_state g_cu;

#define CU_LT_WS_BYTES ((size_t)32 << 20)
#define CU_SCRATCH_BYTES ((size_t)16 << 20)
/* 1-D reductions use at most this many blocks (partials in scratch). */
#define CU_RED_BLOCKS 512

/* The loader and communication threads call backend entries too, and a new
 * host thread starts on device 0: make the backend's device current for the
 * calling thread (once per thread and translation unit). Called by every
 * memory/stream/event entry, by cu_grid/cu_ceil (so before every kernel
 * launch) and by the GEMM entries. */
static inline void cu_bind(void) {
  static thread_local int bound = -1;
  if (bound != g_cu.device) {
    cudaCheck(cudaSetDevice(g_cu.device));
    bound = g_cu.device;
  }
}

/* Grid for a grid-stride loop over n items with `threads` per block. */
static inline unsigned cu_grid(size_t n, int threads) {
  cu_bind();
  size_t b = (n + (size_t)threads - 1) / (size_t)threads;
  size_t cap = (size_t)(g_cu.sm_count > 0 ? g_cu.sm_count : 80) * 32;
  if (b > cap) b = cap;
  return b ? (unsigned)b : 1u;
}
static inline unsigned cu_ceil(size_t a, size_t b) {
  cu_bind();
  return (unsigned)((a + b - 1) / b);
}

/* ---- device helpers ---------------------------------------------------- */
__device__ __forceinline__ float cu_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double cu_warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float cu_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
/* Deterministic block sum (fixed tree); blockDim.x a multiple of 32, <= 1024.
 * Every thread gets the result. */
__device__ __forceinline__ double cu_block_sum_d(double v) {
  __shared__ double sh[32];
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = cu_warp_sum_d(v);
  __syncthreads(); /* sh may still be read by a previous call */
  if (lane == 0) sh[w] = v;
  __syncthreads();
  double t = lane < nw ? sh[lane] : 0.0;
  return cu_warp_sum_d(t);
}

/* GELU, tanh form (ops.h): x * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3) */
#define CU_GELU_K 0.7978845608028654f
#define CU_GELU_C 0.044715f
__device__ __forceinline__ float cu_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float cu_gelu(float x) {
  float u = CU_GELU_K * (x + CU_GELU_C * x * x * x);
  return x * cu_sigmoid(2.0f * u);
}
__device__ __forceinline__ float cu_gelu_grad(float x) {
  float u = CU_GELU_K * (x + CU_GELU_C * x * x * x);
  float s = cu_sigmoid(2.0f * u);
  float du = CU_GELU_K * (1.0f + 3.0f * CU_GELU_C * x * x);
  return s + x * s * (1.0f - s) * 2.0f * du;
}
__device__ __forceinline__ float cu_act(cddp_act a, float x) {
  if (a == CDDP_ACT_RELU) return x > 0.0f ? x : 0.0f;
  if (a == CDDP_ACT_GELU) return cu_gelu(x);
  return x;
}
/* fp32 -> storage type t (RNE), written at element i of dst */
__device__ __forceinline__ void cu_store_as(void *dst, cddp_dtype t, size_t i, float v) {
  if (t == CDDP_F16) ((__half *)dst)[i] = __float2half_rn(v);
  else if (t == CDDP_BF16) ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(v);
  else ((float *)dst)[i] = v;
}
__device__ __forceinline__ float cu_load_as(const void *src, cddp_dtype t, size_t i) {
  if (t == CDDP_F16) return __half2float(((const __half *)src)[i]);
  if (t == CDDP_BF16) return __bfloat162float(((const __nv_bfloat16 *)src)[i]);
  return ((const float *)src)[i];
}

/* Sum of the `nparts` doubles in g_cu.scratch, in order, added to *acc
 * (float). One thread; used after a kernel that wrote per-block partials. */
void cu_finish_sum(int nparts, float *acc);
/* Column sums: out[c] += sum_{r<N} src[r*ld + c] computed deterministically
 * (per-part partials in scratch, then an ordered sum). */
void cu_colsum_acc(const float *src, int N, int C, int ld, float *out);

static inline cudaDataType_t cu_dtype(cddp_dtype t) {
  if (t == CDDP_F16) return CUDA_R_16F;
  if (t == CDDP_BF16) return CUDA_R_16BF;
  if (t == CDDP_F32) return CUDA_R_32F;
  cddp_die(CDDP_EXIT_USAGE, "CUDA GEMM: unsupported element type %s", cddp_dtype_name(t));
}

/* Row-major strided-batched GEMM through cublas (A, B of type t, C fp32):
 * C_b = alpha op(A_b) op(B_b) + beta C_b for b < batch. */
void cu_gemm_batched(int transa, int transb, int m, int n, int k, float alpha, const void *A,
                     int lda, long long sA, const void *B, int ldb, long long sB, float beta,
                     float *C, int ldc, long long sC, int batch, cddp_dtype t);

/* ---- the ops: cu_<name> for every entry of core/ops_list.h ----
 * memory, streams, events: backend.cu; gemm: gemm.cu; bias, activations,
 * elementwise and casts: elementwise.cu; normalisation: norm.cu; attention:
 * attention.cu; losses: loss.cu; embeddings: embedding.cu; DLRM/ViT ops:
 * model_ops.cu; AMP and optimizers: optim.cu. */
#define CDDP_OP(ret, name, params) ret cu_##name params;
#include "core/ops_list.h"

void cu_gemm_reset(void); /* drops the cached cuBLASLt plans (shutdown) */

/* attention_cudnn.cu: fp16/bf16 attention through cuDNN's fused SDPA, with
 * attention.cu's op semantics. cu_sdpa_available: 0 when built without cuDNN.
 * cu_sdpa_ws_bytes prepares the plans (set-up time) and returns its ws size. */
int cu_sdpa_available(void);
size_t cu_sdpa_ws_bytes(int B, int T, int H, int D);
void cu_sdpa_fwd(const float *qkv, float *out, void *ws, int B, int T, int H, int D,
                 cddp_dtype compute);
void cu_sdpa_bwd(const float *dout, const float *qkv, const void *ws, float *dqkv, int B, int T,
                 int H, int D, cddp_dtype compute);
void cu_sdpa_reset(void); /* drops the plans, cuDNN's workspace and handle (shutdown) */

#endif

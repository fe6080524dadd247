/* Shared declarations of the CUDA backend (kernels/cuda), C++ only.
 *
 * Every op of struct cddp_backend has one cu_* function here; backend.cu puts
 * them in the table. The core headers are C without extern "C" guards, so they
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

/* ---- op implementations ---------------------------------------------------- */
/* gemm.cu */
void cu_gemm(const cddp_gemm_args *a);
void cu_gemm_reset(void); /* drops the cached cuBLASLt plans (shutdown) */
/* elementwise.cu */
void cu_bias_grad(const float *dy, int m, int n, int ldy, float *db);
void cu_act_bwd(cddp_act act, const float *pre, const float *dy, float *dx, size_t n);
void cu_act_bias_bwd(cddp_act act, const float *pre, const float *dy, float *dx, int m, int n,
                     float *db);
void cu_act_fwd(cddp_act act, const float *x, float *y, size_t n);
void cu_fill(float *x, size_t n, float v);
void cu_scale(float *x, size_t n, float alpha);
void cu_axpy(float *y, const float *x, size_t n, float alpha);
void cu_add(float *out, const float *a, const float *b, size_t n);
void cu_copy2d(float *dst, int ldd, const float *src, int lds, int rows, int cols);
void cu_cast(void *dst, cddp_dtype dst_t, const void *src, cddp_dtype src_t, size_t n);
/* norm.cu */
void cu_layernorm_fwd(const float *x, const float *w, const float *b, float *y, float *mean,
                      float *rstd, int N, int C, float eps);
void cu_layernorm_bwd(const float *dy, const float *x, const float *w, const float *mean,
                      const float *rstd, float *dx, float *dw, float *db, int N, int C,
                      int accumulate_dx);
void cu_l2norm_fwd(const float *x, float *y, float *norm, int N, int C, float eps);
void cu_l2norm_bwd(const float *dy, const float *y, const float *norm, float *dx, int N, int C);
void cu_softmax_fwd(const float *x, float *y, int N, int C);
void cu_softmax_bwd(const float *y, const float *dy, float *dx, int N, int C);
/* attention.cu */
size_t cu_attention_ws_bytes(int B, int T, int H, int D);
void cu_attention_fwd(const float *qkv, float *out, void *ws, int B, int T, int H, int D,
                      cddp_dtype compute);
void cu_attention_bwd(const float *dout, const float *qkv, const float *out, const void *ws,
                      float *dqkv, int B, int T, int H, int D, cddp_dtype compute);
/* loss.cu */
void cu_bce_logits(const float *logits, const float *labels, int n, float grad_scale,
                   const float *loss_scale, float *loss_sum, float *dlogits);
void cu_xent(const float *logits, int ld, const int32_t *labels, int N, int C, float smoothing,
             float grad_scale, const float *loss_scale, float *loss_sum, float *dlogits);
/* embedding.cu */
void cu_embbag_fwd(const float *table, int dim, const int32_t *ids, int ids_ld, int nbags,
                   int bag_size, int mean, float *out, int ldo);
size_t cu_embbag_bwd_ws_bytes(int cap, int dim);
void cu_embbag_bwd(const int32_t *ids, int ids_ld, int nbags, int bag_size, int mean,
                   const float *dout, int ldo, int dim, int32_t *out_ids, float *out_rows,
                   void *ws);
size_t cu_sparse_coalesce_ws_bytes(int n, int dim);
void cu_sparse_coalesce(const int32_t *ids, const float *rows, int n, int dim, int32_t *out_ids,
                        float *out_rows, void *ws);
void cu_sparse_to_dense(const int32_t *ids, const float *rows, int n, int dim, float *dense);
/* model_ops.cu */
void cu_dot_interact_fwd(const float *T, int B, int F, int D, float *out, int ldo);
void cu_dot_interact_bwd(const float *dout, int ldo, const float *T, int B, int F, int D,
                         float *dT);
void cu_patchify(const uint8_t *img, int B, int H, int W, int C, int P, const float *mean,
                 const float *std, float *out);
void cu_vit_tokens_fwd(const float *patch, const float *cls, const float *pos, float *x, int B,
                       int nP, int D);
void cu_vit_tokens_bwd(const float *dx, float *dpatch, float *dcls, float *dpos, int B, int nP,
                       int D);
/* optim.cu */
void cu_amp_unscale_check(float *g, size_t n, const float *scale, int *found_inf);
void cu_amp_update_scale(float *scale, int *tracker, const int *found_inf, float growth,
                         float backoff, int interval);
void cu_sumsq(const float *x, size_t n, float *acc);
void cu_clip_by_norm(float *x, size_t n, const float *sumsq, float max_norm);
void cu_sgd_update(float *p, const float *g, float *mom, size_t n, float lr, float momentum,
                   int nesterov, float wd, const int *skip, void *half, cddp_dtype half_t);
void cu_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                     float beta1, float beta2, float eps, float wd, const int *step,
                     const int *skip, void *half, cddp_dtype half_t);
void cu_adagrad_update(float *p, const float *g, float *sum, size_t n, float lr, float eps,
                       float wd, const int *skip, void *half, cddp_dtype half_t);
void cu_step_advance(int *step, const int *skip);
void cu_sparse_sgd(float *table, int dim, const int32_t *ids, const float *rows, int n, float lr,
                   const int *skip);
void cu_sparse_adagrad(float *table, float *state, int dim, const int32_t *ids,
                       const float *rows, int n, float lr, float eps, const int *skip);

#endif

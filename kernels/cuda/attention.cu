/* Multi-head scaled dot-product attention (no mask): the plain path.
 *
 * q, k, v (and dout) are gathered per (b, h) into contiguous [B*H, T, D]
 * buffers in the compute type (fp32, or fp16/bf16 rounded as the CPU backend
 * rounds them), then strided-batched cuBLAS GEMMs (fp32 accumulation, fp32
 * output) and the row-softmax kernels of norm.cu do the rest:
 *   fwd: S = scale q k^T -> P = softmax(S) (kept) -> out = P v
 *   bwd: dP = dout v^T, dv = P^T dout, dS = P (dP - rowsum(P dP)),
 *        dq = scale dS k, dk = scale dS^T q
 * For half compute, P and dS are rounded to the compute type before they
 * enter a GEMM (as a fused half kernel does); the softmax backward uses the
 * fp32 P. Same numerics as kernels/cpu/cpu_attention.c.
 *
 * ws layout (each region 256-byte aligned; sizes for the widest case since
 * attention_ws_bytes does not know the compute type):
 *   P   fp32 [BH,T,T]   saved by forward, read by backward
 *   then a scratch area that forward and backward both overwrite:
 *   Q, K, V, dO  [BH,T,D] compute type (4 bytes reserved per element)
 *   Ph  [BH,T,T] half copy of P, later of dS (half compute only)
 *   dP  fp32 [BH,T,T]   (dS in place)
 *   dQ, dK, dV fp32 [BH,T,D]  (forward keeps its fp32 output in dQ)
 * Backward writes into the scratch part of the `const` ws it is given: the
 * caller allocates ws per layer and backward is its last reader.
 * With --attention cudnn, fp16/bf16 attention goes to cuDNN's fused SDPA
 * instead (attention_cudnn.cu); ws is then the larger of the two layouts. */
#include "kernels/cuda/cuda_common.h"

#define GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static size_t al256(size_t b) { return (b + 255) & ~(size_t)255; }

struct attn_ws {
  float *P;
  void *q, *k, *v, *dO, *Ph;
  float *dP, *dQ, *dK, *dV;
};

static attn_ws attn_layout(void *ws, int B, int T, int H, int D) {
  size_t bh = (size_t)B * H, tt = bh * T * T, td = bh * T * D;
  char *p = (char *)ws;
  attn_ws w;
  w.P = (float *)p; p += al256(tt * 4);
  w.q = p; p += al256(td * 4);
  w.k = p; p += al256(td * 4);
  w.v = p; p += al256(td * 4);
  w.dO = p; p += al256(td * 4);
  w.Ph = p; p += al256(tt * 2);
  w.dP = (float *)p; p += al256(tt * 4);
  w.dQ = (float *)p; p += al256(td * 4);
  w.dK = (float *)p; p += al256(td * 4);
  w.dV = (float *)p; p += al256(td * 4);
  return w;
}

size_t cu_attention_ws_bytes(int B, int T, int H, int D) {
  size_t bh = (size_t)B * H, tt = bh * T * T, td = bh * T * D;
  size_t plain = 2 * al256(tt * 4) + al256(tt * 2) + 7 * al256(td * 4);
  if (!g_cu.attn_cudnn) return plain;
  size_t fused = cu_sdpa_ws_bytes(B, T, H, D);
  return fused > plain ? fused : plain;
}

/* dst[((b*H+h)*T+t)*D+d] = src[(b*T+t)*rs + off + h*D + d] as type t */
static __global__ void gather_heads(const float *src, int rs, int off, void *dst, cddp_dtype t,
                                    int B, int T, int H, int D) {
  size_t total = (size_t)B * H * T * D;
  GRID_LOOP(i, total) {
    int d = (int)(i % D);
    size_t r = i / D;
    int tk = (int)(r % T);
    size_t bh = r / T;
    int h = (int)(bh % H), b = (int)(bh / H);
    cu_store_as(dst, t, i, src[((size_t)b * T + tk) * rs + off + (size_t)h * D + d]);
  }
}
/* dst[(b*T+t)*rs + off + h*D + d] = src[((b*H+h)*T+t)*D+d] */
static __global__ void scatter_heads(const float *src, float *dst, int rs, int off, int B, int T,
                                     int H, int D) {
  size_t total = (size_t)B * H * T * D;
  GRID_LOOP(i, total) {
    int d = (int)(i % D);
    size_t r = i / D;
    int tk = (int)(r % T);
    size_t bh = r / T;
    int h = (int)(bh % H), b = (int)(bh / H);
    dst[((size_t)b * T + tk) * rs + off + (size_t)h * D + d] = src[i];
  }
}

static void gather(const float *src, int rs, int off, void *dst, cddp_dtype t, int B, int T, int H,
                   int D) {
  size_t total = (size_t)B * H * T * D;
  gather_heads<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(src, rs, off, dst, t, B, T, H, D);
  cuLaunchCheck();
}
static void scatter(const float *src, float *dst, int rs, int off, int B, int T, int H, int D) {
  size_t total = (size_t)B * H * T * D;
  scatter_heads<<<cu_grid(total, 256), 256, 0, g_cu.compute>>>(src, dst, rs, off, B, T, H, D);
  cuLaunchCheck();
}

static void check_compute(cddp_dtype c) {
  if (c != CDDP_F32 && c != CDDP_F16 && c != CDDP_BF16)
    cddp_die(CDDP_EXIT_USAGE, "attention: unsupported compute type %s", cddp_dtype_name(c));
}

void cu_attention_fwd(const float *qkv, float *out, void *ws, int B, int T, int H, int D,
                      cddp_dtype compute) {
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
  check_compute(compute);
  if (g_cu.attn_cudnn && compute != CDDP_F32) {
    cu_sdpa_fwd(qkv, out, ws, B, T, H, D, compute);
    return;
  }
  attn_ws w = attn_layout(ws, B, T, H, D);
  const int half = compute != CDDP_F32, bh = B * H, HD = H * D;
  const float scale = 1.0f / sqrtf((float)D);
  const long long tt = (long long)T * T, td = (long long)T * D;
  gather(qkv, 3 * HD, 0, w.q, compute, B, T, H, D);
  gather(qkv, 3 * HD, HD, w.k, compute, B, T, H, D);
  gather(qkv, 3 * HD, 2 * HD, w.v, compute, B, T, H, D);
  cu_gemm_batched(0, 1, T, T, D, scale, w.q, D, td, w.k, D, td, 0.0f, w.P, T, tt, bh, compute);
  cu_softmax_fwd(w.P, w.P, bh * T, T);
  const void *Pm = w.P;
  if (half) {
    cu_cast(w.Ph, compute, w.P, CDDP_F32, (size_t)bh * tt);
    Pm = w.Ph;
  }
  cu_gemm_batched(0, 0, T, D, T, 1.0f, Pm, T, tt, w.v, D, td, 0.0f, w.dQ, D, td, bh, compute);
  scatter(w.dQ, out, HD, 0, B, T, H, D);
}

void cu_attention_bwd(const float *dout, const float *qkv, const float *out, const void *ws,
                      float *dqkv, int B, int T, int H, int D, cddp_dtype compute) {
  (void)out;
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
  check_compute(compute);
  if (g_cu.attn_cudnn && compute != CDDP_F32) {
    cu_sdpa_bwd(dout, qkv, ws, dqkv, B, T, H, D, compute);
    return;
  }
  attn_ws w = attn_layout((void *)ws, B, T, H, D); /* scratch part is rewritten, see above */
  const int half = compute != CDDP_F32, bh = B * H, HD = H * D;
  const float scale = 1.0f / sqrtf((float)D);
  const long long tt = (long long)T * T, td = (long long)T * D;
  gather(qkv, 3 * HD, 0, w.q, compute, B, T, H, D);
  gather(qkv, 3 * HD, HD, w.k, compute, B, T, H, D);
  gather(qkv, 3 * HD, 2 * HD, w.v, compute, B, T, H, D);
  gather(dout, HD, 0, w.dO, compute, B, T, H, D);
  const void *Pm = w.P;
  if (half) {
    cu_cast(w.Ph, compute, w.P, CDDP_F32, (size_t)bh * tt);
    Pm = w.Ph;
  }
  /* dP = dO v^T ; dv = P^T dO */
  cu_gemm_batched(0, 1, T, T, D, 1.0f, w.dO, D, td, w.v, D, td, 0.0f, w.dP, T, tt, bh, compute);
  cu_gemm_batched(1, 0, T, D, T, 1.0f, Pm, T, tt, w.dO, D, td, 0.0f, w.dV, D, td, bh, compute);
  /* dS = P (dP - rowsum(P dP)), in place in dP */
  cu_softmax_bwd(w.P, w.dP, w.dP, bh * T, T);
  const void *dSm = w.dP;
  if (half) {
    cu_cast(w.Ph, compute, w.dP, CDDP_F32, (size_t)bh * tt); /* P's half copy is no longer needed */
    dSm = w.Ph;
  }
  cu_gemm_batched(0, 0, T, D, T, scale, dSm, T, tt, w.k, D, td, 0.0f, w.dQ, D, td, bh, compute);
  cu_gemm_batched(1, 0, T, D, T, scale, dSm, T, tt, w.q, D, td, 0.0f, w.dK, D, td, bh, compute);
  scatter(w.dQ, dqkv, 3 * HD, 0, B, T, H, D);
  scatter(w.dK, dqkv, 3 * HD, HD, B, T, H, D);
  scatter(w.dV, dqkv, 3 * HD, 2 * HD, B, T, H, D);
}

/* Multi-head scaled dot-product attention (no mask) with OpenBLAS.
 *
 * For each (b, h): S = q k^T / sqrt(D), P = softmax(S) (kept in ws for the
 * backward pass), out = P v. q, k and v are read in place from the
 * [B, T, 3, H, D] qkv tensor through sgemm's leading dimensions (3*H*D).
 *
 * compute F16/BF16 emulates half-precision matmul inputs: q, k, v (and P
 * before P v) are rounded through the storage type; backward rounds the
 * inputs of its matmuls likewise (dout, v, P, dS, q, k) and runs the softmax
 * backward in fp32 with the unrounded P, as a fused half kernel would.
 *
 * Parallel over (b, h) pairs when there are several; OpenBLAS is then held
 * to one thread for the duration (its own pool would oversubscribe the
 * cores), and restored afterwards. */
#include <cblas.h>
#include <math.h>

#include "kernels/cpu/cpu_internal.h"

size_t cpu_attention_ws_bytes(int B, int T, int H, int D) {
  (void)D;
  return (size_t)B * H * T * T * sizeof(float);
}

/* Pointers of head h of batch b inside qkv / out. */
#define QKV_Q(base, b, h) ((base) + ((size_t)(b) * T * 3 * H) * D + (size_t)(h) * D)

/* Before a parallel loop that calls sgemm: one OpenBLAS thread; returns the
 * count to restore (0: nothing changed). */
static int blas_single(int par) {
  if (!par) return 0;
  int n = openblas_get_num_threads();
  if (n > 1) openblas_set_num_threads(1);
  return n > 1 ? n : 0;
}
static void blas_restore(int n) {
  if (n > 0) openblas_set_num_threads(n);
}

/* Copies (rounded) a [T, D] head slice with row stride ld into dst [T, D]. */
static void round_slice(float *dst, const float *src, int ld, int T, int D, cddp_dtype t) {
  for (int i = 0; i < T; i++) cpu_round_n(dst + (size_t)i * D, src + (size_t)i * ld, t, D);
}

void cpu_attention_fwd(const float *qkv, float *out, void *ws, int B, int T, int H, int D,
                       cddp_dtype compute) {
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
  const float scale = 1.0f / sqrtf((float)D);
  const int ldq = 3 * H * D, ldo = H * D;
  const int half = compute == CDDP_F16 || compute == CDDP_BF16;
  float *P_all = ws;
  int nbh = B * H;
  int par = nbh > 1 && (size_t)nbh * T * T * D >= CPU_PAR_MIN && cpu_max_threads() > 1;
  int blas_threads = blas_single(par);
#pragma omp parallel for schedule(static) if (par)
  for (int bh = 0; bh < nbh; bh++) {
    int b = bh / H, h = bh % H;
    const float *q = QKV_Q(qkv, b, h), *k = q + (size_t)H * D, *v = q + (size_t)2 * H * D;
    float *o = out + (size_t)b * T * ldo + (size_t)h * D;
    float *P = P_all + (size_t)bh * T * T;
    int ld = ldq;
    const float *Pv = P;
    if (half) {
      float *sc = cpu_scratch(CPU_SCRATCH_C, ((size_t)3 * T * D + (size_t)T * T) * sizeof(float));
      float *qr = sc, *kr = qr + (size_t)T * D, *vr = kr + (size_t)T * D, *Pr = vr + (size_t)T * D;
      round_slice(qr, q, ldq, T, D, compute);
      round_slice(kr, k, ldq, T, D, compute);
      round_slice(vr, v, ldq, T, D, compute);
      q = qr;
      k = kr;
      v = vr;
      ld = D;
      Pv = Pr;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, scale, q, ld, k, ld, 0.0f, P, T);
    for (int i = 0; i < T; i++) cpu_softmax_row(P + (size_t)i * T, T);
    if (half) cpu_round_n((float *)Pv, P, compute, (size_t)T * T);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, Pv, T, v, ld, 0.0f, o,
                ldo);
  }
  blas_restore(blas_threads);
}

/* dP = P (dP - rowsum(dP P)) for a [T, T] block, in place */
CPU_INLINE void softmax_bwd_inplace_body(const float *P, float *dP, int T) {
  for (int i = 0; i < T; i++) {
    const float *Pi = P + (size_t)i * T;
    float *dPi = dP + (size_t)i * T;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < T; j++) s += dPi[j] * Pi[j];
#pragma omp simd
    for (int j = 0; j < T; j++) dPi[j] = Pi[j] * (dPi[j] - s);
  }
}
CPU_MULTIVERSION(softmax_bwd_inplace, (const float *P, float *dP, int T), (P, dP, T))

/* dP = dout v^T; dv = P^T dout; dS = P (dP - rowsum(dP P)); dq = scale dS k;
 * dk = scale dS^T q. */
void cpu_attention_bwd(const float *dout, const float *qkv, const float *out, const void *ws,
                       float *dqkv, int B, int T, int H, int D, cddp_dtype compute) {
  (void)out;
  if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
  const float scale = 1.0f / sqrtf((float)D);
  const int ldq = 3 * H * D, ldo = H * D;
  const int half = compute == CDDP_F16 || compute == CDDP_BF16;
  const float *P_all = ws;
  int nbh = B * H;
  int par = nbh > 1 && (size_t)nbh * T * T * D >= CPU_PAR_MIN && cpu_max_threads() > 1;
  int blas_threads = blas_single(par);
#pragma omp parallel for schedule(static) if (par)
  for (int bh = 0; bh < nbh; bh++) {
    int b = bh / H, h = bh % H;
    const float *q = QKV_Q(qkv, b, h), *k = q + (size_t)H * D, *v = q + (size_t)2 * H * D;
    float *dq = QKV_Q(dqkv, b, h), *dk = dq + (size_t)H * D, *dv = dq + (size_t)2 * H * D;
    const float *dO = dout + (size_t)b * T * ldo + (size_t)h * D;
    const float *P = P_all + (size_t)bh * T * T;
    size_t extra = half ? (size_t)4 * T * D + (size_t)2 * T * T : 0;
    float *dP = cpu_scratch(CPU_SCRATCH_C, ((size_t)T * T + extra) * sizeof(float));
    int ld = ldq, lddo = ldo;
    const float *Pm = P; /* P as a matmul input */
    float *dSm = dP;     /* dS as a matmul input */
    if (half) {
      float *qr = dP + (size_t)T * T, *kr = qr + (size_t)T * D, *vr = kr + (size_t)T * D;
      float *dor = vr + (size_t)T * D, *Pr = dor + (size_t)T * D, *dSr = Pr + (size_t)T * T;
      round_slice(qr, q, ldq, T, D, compute);
      round_slice(kr, k, ldq, T, D, compute);
      round_slice(vr, v, ldq, T, D, compute);
      round_slice(dor, dO, ldo, T, D, compute);
      cpu_round_n(Pr, P, compute, (size_t)T * T);
      q = qr;
      k = kr;
      v = vr;
      dO = dor;
      ld = D;
      lddo = D;
      Pm = Pr;
      dSm = dSr;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, dO, lddo, v, ld, 0.0f, dP,
                T);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, Pm, T, dO, lddo, 0.0f, dv,
                ldq);
    softmax_bwd_inplace(P, dP, T);
    if (half) cpu_round_n(dSm, dP, compute, (size_t)T * T);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, scale, dSm, T, k, ld, 0.0f, dq,
                ldq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, scale, dSm, T, q, ld, 0.0f, dk,
                ldq);
  }
  blas_restore(blas_threads);
}

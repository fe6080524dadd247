/* Shared declarations of the CPU backend (kernels/cpu). Every op of
 * struct cddp_backend has one cpu_* function, declared here from the op list;
 * cpu_backend.c puts them in the table. Helpers: per-thread scratch memory, OpenMP thresholds, and the
 * branch-free math (exp, sigmoid, GELU) that the compiler can vectorise. */
#ifndef CDDP_KERNELS_CPU_INTERNAL_H
#define CDDP_KERNELS_CPU_INTERNAL_H

/* Without these GCC keeps comparisons like `x > 0 ? x : 0` as branches (an
 * ordered compare may raise an FP exception) and sqrtf as a call (errno),
 * and will not vectorise the
 * loops around them. cddp never reads FP exception flags, so nothing else
 * changes: rounding and results stay IEEE. Applies to every kernels/cpu file
 * (all include this header first).
 * fp-contract=off: the AVX-512 variants below (CPU_MULTIVERSION) may use FMA
 * instructions; without contraction every variant rounds exactly like the
 * baseline (SSE) build, so elementwise kernels give the same bits on every
 * ISA (only the lane count of simd reductions differs). */
#pragma GCC optimize("no-trapping-math", "no-math-errno", "fp-contract=off")

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/ops.h"

/* Work below this many elements runs on one thread (thread start-up costs
 * more than the loop). */
#define CPU_PAR_MIN ((size_t)1 << 15)

/* Per-thread growable scratch: slot s of the calling thread, at least `bytes`
 * bytes, 64-byte aligned. It grows on the first calls (set-up / first step)
 * and is reused afterwards, so steady-state steps do not allocate. The
 * contents are not kept across calls of different ops. */
enum { CPU_SCRATCH_A = 0, CPU_SCRATCH_B, CPU_SCRATCH_C, CPU_SCRATCH_SLOTS };
void *cpu_scratch(int slot, size_t bytes);
void cpu_scratch_release(void); /* frees the calling thread's slots */

/* Number of threads a parallel region started now would use. */
int cpu_max_threads(void);

/* ---- run-time ISA dispatch ----------------------------------------------------
 * The project builds for x86-64-v2 (SSE4.2); the hot elementwise kernels are
 * also compiled for AVX2 and AVX-512 and picked at run time from CPUID (once).
 * CDDP_CPU_ISA=base|avx2|avx512 caps the choice (for tests and comparisons). */
enum { CPU_ISA_BASE = 0, CPU_ISA_AVX2 = 1, CPU_ISA_AVX512 = 2 };
int cpu_isa(void);

#define CPU_INLINE static inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")))
#define CPU_TARGET_AVX2 __attribute__((target("avx2")))
/* From `CPU_INLINE void NAME##_body PARAMS {...}` defines `static void NAME
 * PARAMS` running the body compiled for the best available ISA. ARGS is the
 * parenthesised argument list matching PARAMS. */
#define CPU_MULTIVERSION(NAME, PARAMS, ARGS)                                          \
  static CPU_TARGET_AVX512 __attribute__((noinline)) void NAME##_avx512 PARAMS {      \
    NAME##_body ARGS;                                                                 \
  }                                                                                   \
  static CPU_TARGET_AVX2 __attribute__((noinline)) void NAME##_avx2 PARAMS {          \
    NAME##_body ARGS;                                                                 \
  }                                                                                   \
  static __attribute__((noinline)) void NAME##_base PARAMS { NAME##_body ARGS; }      \
  static void NAME PARAMS {                                                           \
    int isa_ = cpu_isa();                                                             \
    if (isa_ == CPU_ISA_AVX512) NAME##_avx512 ARGS;                                   \
    else if (isa_ == CPU_ISA_AVX2) NAME##_avx2 ARGS;                                  \
    else NAME##_base ARGS;                                                            \
  }
#else
#define CPU_MULTIVERSION(NAME, PARAMS, ARGS) \
  static void NAME PARAMS { NAME##_body ARGS; }
#endif

/* ---- conversions (cpu_cast.c); exact, bit-identical to core/dtype.c ---- */
void cpu_to_f32(float *dst, const void *src, cddp_dtype t, size_t n);
void cpu_from_f32(void *dst, cddp_dtype t, const float *src, size_t n);
/* dst[i] = cddp_round_to(t, src[i]) (dst may equal src) */
void cpu_round_n(float *dst, const float *src, cddp_dtype t, size_t n);

/* ---- math -------------------------------------------------------------- */
/* Horizontal sum / max of short rows. GCC's `omp simd reduction` ends with a
 * serial loop over its lane array, which dominates rows of a few dozen
 * elements (attention softmax, T = 50); these reduce whole 16-float vectors
 * (GCC vector extension) and then the 16 lanes as a tree. */
typedef float cpu_v16 __attribute__((vector_size(64)));
typedef int32_t cpu_v16i __attribute__((vector_size(64)));
/* lane-wise a > b ? a : b (a macro: a function returning a 64-byte vector
 * would draw GCC's ABI warning in the non-AVX-512 build) */
#define CPU_VMAX16(a, b)                                                    \
  __extension__({                                                           \
    cpu_v16 a_ = (a), b_ = (b);                                             \
    cpu_v16i m_ = a_ > b_;                                                  \
    (cpu_v16)(((cpu_v16i)a_ & m_) | ((cpu_v16i)b_ & ~m_));                  \
  })
CPU_INLINE float cpu_row_max(const float *x, int n) { /* n >= 1 */
  float mx = x[0];
  int c = 0;
  if (n >= 16) {
    cpu_v16 m, v;
    memcpy(&m, x, sizeof m);
    for (c = 16; c + 16 <= n; c += 16) {
      memcpy(&v, x + c, sizeof v);
      m = CPU_VMAX16(m, v);
    }
    m = CPU_VMAX16(m, __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    m = CPU_VMAX16(m, __builtin_shufflevector(m, m, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3));
    m = CPU_VMAX16(m, __builtin_shufflevector(m, m, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1));
    m = CPU_VMAX16(m, __builtin_shufflevector(m, m, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0));
    mx = m[0];
  }
  for (; c < n; c++) mx = x[c] > mx ? x[c] : mx;
  return mx;
}
CPU_INLINE float cpu_row_sum(const float *x, int n) {
  float s = 0.0f;
  int c = 0;
  if (n >= 16) {
    cpu_v16 a = {0}, v;
    for (; c + 16 <= n; c += 16) {
      memcpy(&v, x + c, sizeof v);
      a += v;
    }
    a += __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    a += __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
    a += __builtin_shufflevector(a, a, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
    a += __builtin_shufflevector(a, a, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
    s = a[0];
  }
  for (; c < n; c++) s += x[c];
  return s;
}

/* expf to about 2 ulp, branch-free so loops calling it vectorise (no
 * floorf, no selects after the polynomial). NaN in, NaN out; x >= 88.8
 * overflows to +inf; x <= -104 gives 0; results below FLT_MIN are subnormal. */
CPU_INLINE float cpu_expf(float x) {
  const float hi = 88.8f, lo = -104.0f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  /* n = round(x / ln2) by the 1.5*2^23 trick (floorf would not vectorise) */
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  /* 2^n as two factors 2^n1 2^n2 (n in [-150, 128]) so that each exponent
   * field stays valid; the product overflows or underflows gracefully */
  int ni = (int)(n == n ? n : 0.0f); /* NaN: converting it to int is undefined; p is NaN already */
  int n1 = ni >> 1, n2 = ni - n1;
  union { uint32_t u; float f; } s1 = {(uint32_t)(n1 + 127) << 23}, s2 = {(uint32_t)(n2 + 127) << 23};
  return p * s1.f * s2.f;
}

CPU_INLINE float cpu_sigmoid(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

/* GELU, tanh form: 0.5 x (1 + tanh(u)) = x * sigmoid(2u),
 * u = sqrt(2/pi) (x + 0.044715 x^3). */
#define CPU_GELU_K 0.7978845608028654f
#define CPU_GELU_C 0.044715f
CPU_INLINE float cpu_gelu(float x) {
  float u = CPU_GELU_K * (x + CPU_GELU_C * x * x * x);
  return x * cpu_sigmoid(2.0f * u);
}
/* d/dx GELU = s + x s (1 - s) 2 u'(x), s = sigmoid(2u) */
CPU_INLINE float cpu_gelu_grad(float x) {
  float u = CPU_GELU_K * (x + CPU_GELU_C * x * x * x);
  float s = cpu_sigmoid(2.0f * u);
  float du = CPU_GELU_K * (1.0f + 3.0f * CPU_GELU_C * x * x);
  return s + x * s * (1.0f - s) * 2.0f * du;
}

/* ---- the ops: cpu_<name> for every entry of core/ops_list.h ----
 * memory, streams, events: cpu_backend.c; gemm, bias and activations:
 * cpu_gemm.c; elementwise and casts: cpu_elementwise.c; normalisation:
 * cpu_norm.c; attention: cpu_attention.c; losses: cpu_loss.c; embeddings:
 * cpu_embedding.c; DLRM/ViT ops: cpu_model_ops.c; AMP and optimizers:
 * cpu_optim.c. */
#define CDDP_OP(ret, name, params) ret cpu_##name params;
#include "core/ops_list.h"

/* one row of softmax in place: y = exp(y - max) / sum (used by attention) */
void cpu_softmax_row(float *y, int C);

#endif

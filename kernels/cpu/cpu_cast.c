/* fp32 <-> fp16/bf16 over arrays, bit-identical to core/dtype.c (RNE, IEEE
 * overflow/subnormals, NaN stays NaN). bf16 is plain bit arithmetic that the
 * compiler vectorises; fp16 uses the F16C instructions when the CPU has them
 * (their rounding is RNE and their NaN handling equals dtype.c's), else the
 * scalar functions of core/dtype.c. */
#include <cpuid.h>
#include <immintrin.h>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/cpu_internal.h"

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline uint16_t bf16_from(float f) {
  uint32_t u = f2u(f);
  uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uint32_t q = (u >> 16) | 0x0040u;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? q : r);
}

/* F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not
 * know "f16c"; "avx" also covers the OS saving the YMM registers. */
static int have_f16c(void) {
  static int cached = -1;
  if (cached < 0) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    cached = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && __builtin_cpu_supports("avx");
  }
  return cached;
}

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(float *dst, const uint16_t *src,
                                                                 size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  for (; i < n; i++) dst[i] = cddp_f16_to_f32(src[i]);
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(uint16_t *dst, const float *src,
                                                                 size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) dst[i] = cddp_f32_to_f16(src[i]);
}

__attribute__((target("avx,f16c"))) static void f16_round_f16c(float *dst, const float *src,
                                                               size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                                              _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; i++) dst[i] = cddp_round_to(CDDP_F16, src[i]);
}

void cpu_to_f32(float *dst, const void *src, cddp_dtype t, size_t n) {
  if (t == CDDP_F32) {
    if (dst != src) memcpy(dst, src, n * sizeof(float));
  } else if (t == CDDP_BF16) {
    const uint16_t *s = src;
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = u2f((uint32_t)s[i] << 16);
  } else if (t == CDDP_F16) {
    if (have_f16c()) {
      f16_to_f32_f16c(dst, src, n);
    } else {
      const uint16_t *s = src;
      for (size_t i = 0; i < n; i++) dst[i] = cddp_f16_to_f32(s[i]);
    }
  } else {
    cddp_die(CDDP_EXIT_USAGE, "cast: cannot convert %s to fp32", cddp_dtype_name(t));
  }
}

void cpu_from_f32(void *dst, cddp_dtype t, const float *src, size_t n) {
  if (t == CDDP_F32) {
    if (dst != src) memcpy(dst, src, n * sizeof(float));
  } else if (t == CDDP_BF16) {
    uint16_t *d = dst;
#pragma omp simd
    for (size_t i = 0; i < n; i++) d[i] = bf16_from(src[i]);
  } else if (t == CDDP_F16) {
    if (have_f16c()) {
      f32_to_f16_f16c(dst, src, n);
    } else {
      uint16_t *d = dst;
      for (size_t i = 0; i < n; i++) d[i] = cddp_f32_to_f16(src[i]);
    }
  } else {
    cddp_die(CDDP_EXIT_USAGE, "cast: cannot convert fp32 to %s", cddp_dtype_name(t));
  }
}

void cpu_round_n(float *dst, const float *src, cddp_dtype t, size_t n) {
  if (t == CDDP_BF16) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = u2f((uint32_t)bf16_from(src[i]) << 16);
  } else if (t == CDDP_F16) {
    if (have_f16c()) {
      f16_round_f16c(dst, src, n);
    } else {
      for (size_t i = 0; i < n; i++) dst[i] = cddp_round_to(CDDP_F16, src[i]);
    }
  } else if (dst != src) {
    memcpy(dst, src, n * sizeof(float));
  }
}

void cpu_cast(void *dst, cddp_dtype dst_t, const void *src, cddp_dtype src_t, size_t n) {
  if (dst_t == src_t) {
    if (dst != src) memcpy(dst, src, n * cddp_dtype_size(dst_t));
    return;
  }
  if (src_t > CDDP_BF16 || dst_t > CDDP_BF16)
    cddp_die(CDDP_EXIT_USAGE, "cast: cannot convert %s to %s", cddp_dtype_name(src_t),
             cddp_dtype_name(dst_t));
  /* chunks: parallel over large arrays, and half <-> half through fp32 */
  const size_t CH = 4096;
  size_t nch = (n + CH - 1) / CH;
  size_t ss = cddp_dtype_size(src_t), ds = cddp_dtype_size(dst_t);
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t c = 0; c < nch; c++) {
    size_t i0 = c * CH, len = n - i0 < CH ? n - i0 : CH;
    const char *s = (const char *)src + i0 * ss;
    char *d = (char *)dst + i0 * ds;
    if (src_t == CDDP_F32) {
      cpu_from_f32(d, dst_t, (const float *)s, len);
    } else if (dst_t == CDDP_F32) {
      cpu_to_f32((float *)d, s, src_t, len);
    } else {
      float tmp[4096];
      cpu_to_f32(tmp, s, src_t, len);
      cpu_from_f32(d, dst_t, tmp, len);
    }
  }
}

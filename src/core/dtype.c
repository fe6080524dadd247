#include "core/dtype.h"

#include <string.h>

size_t cddp_dtype_size(cddp_dtype t) {
  switch (t) {
    case CDDP_F32: case CDDP_I32: return 4;
    case CDDP_F16: case CDDP_BF16: return 2;
    case CDDP_U8: return 1;
    case CDDP_I64: case CDDP_F64: case CDDP_U64: return 8;
  }
  return 0;
}

const char *cddp_dtype_name(cddp_dtype t) {
  static const char *names[] = {"fp32", "fp16", "bf16", "int32", "uint8", "int64", "fp64", "uint64"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

int cddp_dtype_parse(const char *s) {
  if (!strcmp(s, "fp32") || !strcmp(s, "f32")) return CDDP_F32;
  if (!strcmp(s, "fp16") || !strcmp(s, "f16")) return CDDP_F16;
  if (!strcmp(s, "bf16")) return CDDP_BF16;
  return -1;
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t cddp_f32_to_bf16(float f) {
  uint32_t u = f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even; overflow carries into inf */
  return (uint16_t)(u >> 16);
}

float cddp_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t cddp_f32_to_f16(float f) {
  uint32_t u = f2u(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN */
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
  if (a < 0x38800000u) {
    /* Subnormal or zero in fp16: value = m * 2^-24. Shift the 24-bit
     * significand right and round to nearest even. */
    if (a < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to zero */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  /* Normal: rebias exponent (127 -> 15) and round the mantissa to 10 bits. */
  uint32_t r = a - 0x38000000u;
  r += 0xfffu + ((r >> 13) & 1u);
  return (uint16_t)(sign | (r >> 13));
}

float cddp_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {
    if (m == 0) return u2f(sign);
    float v = (float)m * 5.9604644775390625e-8f; /* m * 2^-24, exact */
    return sign ? -v : v;
  }
  if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));
  return u2f(sign | ((e + 112) << 23) | (m << 13));
}

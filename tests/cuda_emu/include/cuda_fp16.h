/* cuda-emu: __half and its conversions (IEEE binary16, round to nearest even,
 * subnormals, infinities and NaN as the CUDA Math API documents them). */
#ifndef CUEMU_CUDA_FP16_H
#define CUEMU_CUDA_FP16_H

#include <cstdint>
#include <cstring>

struct __half {
  unsigned short __x;
};
typedef __half half;

inline __half __float2half_rn(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  unsigned short h;
  if (ax >= 0x7f800000u) {                      /* inf or NaN */
    h = (unsigned short)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x0200u : 0u));
  } else if (ax >= 0x477ff000u) {               /* rounds to >= 65520: overflow */
    h = (unsigned short)(sign | 0x7c00u);
  } else if (ax < 0x38800000u) {                /* below 2^-14: subnormal or zero */
    if (ax < 0x33000000u) {                     /* below 2^-25: rounds to zero */
      h = (unsigned short)sign;
    } else {
      uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
      uint32_t shift = 126 - e;                 /* 14 - (e - 127) + 13 - 1 + 1 */
      uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
      if (rem > half || (rem == half && (q & 1u))) q++;
      h = (unsigned short)(sign | q);
    }
  } else {
    uint32_t q = ((ax - 0x38000000u) >> 13);    /* rebias 127 -> 15 */
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
    h = (unsigned short)(sign | q);
  }
  __half r;
  r.__x = h;
  return r;
}

inline float __half2float(__half v) {
  uint32_t h = v.__x, sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
  if (e == 0x1fu) {
    x = sign | 0x7f800000u | (m << 13);
  } else if (e == 0) {
    if (m == 0) {
      x = sign;
    } else { /* subnormal: normalise */
      int s = 0;
      while (!(m & 0x400u)) { m <<= 1; s++; }
      x = sign | ((uint32_t)(113 - s) << 23) | ((m & 0x3ffu) << 13);
    }
  } else {
    x = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
inline __half __float2half(float f) { return __float2half_rn(f); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short x) { __half h; h.__x = x; return h; }

#endif

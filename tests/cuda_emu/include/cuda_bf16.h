/* cuda-emu: __nv_bfloat16 and its conversions (round to nearest even; NaN
 * stays a quiet NaN), as the CUDA Math API documents them. */
#ifndef CUEMU_CUDA_BF16_H
#define CUEMU_CUDA_BF16_H

#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
  unsigned short __x;
};
typedef __nv_bfloat16 nv_bfloat16;

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  __nv_bfloat16 r;
  if ((x & 0x7fffffffu) > 0x7f800000u)
    r.__x = (unsigned short)((x >> 16) | 0x0040u);
  else
    r.__x = (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
  return r;
}
inline float __bfloat162float(__nv_bfloat16 v) {
  uint32_t x = (uint32_t)v.__x << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }

#endif

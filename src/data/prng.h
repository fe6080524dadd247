/* The fixed pseudo-random generator of src/data (documented in docs/data.md
 * so that runs are reproducible and other tools can replay them).
 *
 * splitmix64 (Steele, Lea, Flood 2014): state += 0x9E3779B97F4A7C15, then the
 * output mix below. Bounded draws use Lemire's multiply-and-reject method, so
 * cddp_rng_below(s, n) is exactly uniform on [0, n). */
#ifndef CDDP_DATA_PRNG_H
#define CDDP_DATA_PRNG_H

#include <math.h>
#include <stdint.h>

typedef struct { uint64_t s; } cddp_rng;

static inline uint64_t cddp_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t cddp_rng_next(cddp_rng *r) {
  r->s += 0x9E3779B97F4A7C15ull;
  return cddp_mix64(r->s);
}

static inline uint64_t cddp_rng_below(cddp_rng *r, uint64_t n) {
  uint64_t x = cddp_rng_next(r);
  __uint128_t m = (__uint128_t)x * n;
  uint64_t l = (uint64_t)m;
  if (l < n) {
    uint64_t t = (0 - n) % n;
    while (l < t) {
      x = cddp_rng_next(r);
      m = (__uint128_t)x * n;
      l = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double cddp_rng_uniform(cddp_rng *r) {
  return (double)(cddp_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, one value per call). */
static inline double cddp_rng_normal(cddp_rng *r) {
  double u = 1.0 - cddp_rng_uniform(r), v = cddp_rng_uniform(r);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Fisher-Yates from the top: for i = n-1 down to 1, swap a[i] and a[below(i+1)]. */
static inline void cddp_shuffle_i64(cddp_rng *r, int64_t *a, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)cddp_rng_below(r, (uint64_t)i + 1);
    int64_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

#endif

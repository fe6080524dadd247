/* Helpers for the model tests: random fills and central finite differences.
 * All tests run on the CPU backend, whose memory is host-addressable. */
#ifndef CDDP_TESTS_MODEL_FD_UTIL_H
#define CDDP_TESTS_MODEL_FD_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline uint64_t tu_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static inline double tu_unif(uint64_t *s) { return (double)(tu_next(s) >> 11) * 0x1.0p-53; }
static inline void tu_fill(float *x, size_t n, uint64_t *s, double a) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(a * (2 * tu_unif(s) - 1));
}

typedef double (*tu_loss_fn)(void *ctx);

/* Compares grad[i] with central differences of f at `samples` random
 * coordinates of x[0..n) (all if samples >= n). Returns the number of
 * disagreements; prints each. Tolerance: |fd - g| <= rtol*max(|fd|,|g|) +
 * atol_rel*max|grad| + 1e-5. */
static inline int tu_check_fd(const char *what, float *x, size_t n, const float *grad,
                              tu_loss_fn f, void *ctx, int samples, uint64_t seed, double h,
                              double rtol, double atol_rel) {
  double gmax = 0;
  for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
  int bad = 0;
  int count = (size_t)samples >= n ? (int)n : samples;
  for (int s = 0; s < count; s++) {
    size_t i = (size_t)samples >= n ? (size_t)s : (size_t)(tu_next(&seed) % n);
    float x0 = x[i];
    x[i] = (float)(x0 + h);
    double lp = f(ctx);
    x[i] = (float)(x0 - h);
    double lm = f(ctx);
    x[i] = x0;
    double fd = (lp - lm) / (2 * h), g = grad[i];
    double tol = rtol * fmax(fabs(fd), fabs(g)) + atol_rel * gmax + 1e-5;
    if (fabs(fd - g) > tol) {
      if (bad < 5)
        fprintf(stderr, "  %s[%zu]: analytic %.6g, finite difference %.6g (tol %.3g)\n", what, i,
                g, fd, tol);
      bad++;
    }
  }
  return bad;
}

#endif

/* Helpers shared by the unit tests: a seeded PRNG, closeness checks and a
 * central finite-difference gradient check. Header-only (static functions). */
#ifndef CDDP_TESTS_UNIT_TEST_UTIL_H
#define CDDP_TESTS_UNIT_TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/ops.h"

static uint64_t tu_state = 1;
static inline void tu_seed(uint64_t s) { tu_state = s * 0x9e3779b97f4a7c15ull + 12345; }
/* splitmix64 */
static inline uint64_t tu_next(void) {
  uint64_t z = (tu_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline double tu_u01(void) { return (tu_next() >> 11) * (1.0 / 9007199254740992.0); }
static inline float tu_f(float lo, float hi) { return lo + (hi - lo) * (float)tu_u01(); }
static inline int tu_int(int n) { return (int)(tu_next() % (uint64_t)n); }
static inline void tu_fill(float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = tu_f(lo, hi);
}
static inline float *tu_rand(size_t n, float lo, float hi) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  tu_fill(x, n, lo, hi);
  return x;
}
static inline float *tu_copy(const float *x, size_t n) {
  float *y = malloc((n ? n : 1) * sizeof(float));
  memcpy(y, x, n * sizeof(float));
  return y;
}

/* |got - ref| <= atol + rtol |ref| for every element, else fail naming it */
static inline void tu_close(const char *what, const float *got, const double *ref, size_t n,
                            double atol, double rtol) {
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - ref[i]);
    if (!(d <= atol + rtol * fabs(ref[i])))
      fail_msg("%s[%zu]: got %.9g, want %.9g (diff %.3g)", what, i, got[i], ref[i], d);
  }
}
static inline void tu_close_ff(const char *what, const float *got, const float *ref, size_t n,
                               double atol, double rtol) {
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - ref[i]);
    if (!(d <= atol + rtol * fabs((double)ref[i])))
      fail_msg("%s[%zu]: got %.9g, want %.9g (diff %.3g)", what, i, got[i], ref[i], d);
  }
}

/* Central differences of a scalar objective f(ctx) with respect to x[i] for
 * every i (or `every`-th i); compared with grad, error relative to max|grad|. */
static inline void tu_fd(const char *what, float *x, size_t n, const float *grad,
                         double (*f)(void *), void *ctx, float h, double tol, size_t every) {
  double gmax = 1e-3;
  for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
  if (every == 0) every = 1;
  for (size_t i = 0; i < n; i += every) {
    float x0 = x[i];
    x[i] = x0 + h;
    double fp = f(ctx);
    x[i] = x0 - h;
    double fm = f(ctx);
    x[i] = x0;
    double fd = (fp - fm) / ((double)(x0 + h) - (double)(x0 - h));
    if (fabs(fd - grad[i]) > tol * gmax)
      fail_msg("%s: d/dx[%zu]: analytic %.7g, finite difference %.7g (max|g| %.3g)", what, i,
               grad[i], fd, gmax);
  }
}

static inline double tu_dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

static inline double tu_gelu(double x) {
  return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
static inline double tu_round(cddp_dtype t, float x) { return (double)cddp_round_to(t, x); }

#endif

/* Helpers of the CUDA parity tests: paired host (CPU backend) and device
 * (CUDA backend) buffers with the same initial contents, and a normwise
 * comparison max|gpu - cpu| / max|cpu| <= tol. Header-only. */
#ifndef CDDP_TESTS_CUDA_PARITY_UTIL_H
#define CDDP_TESTS_CUDA_PARITY_UTIL_H

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

extern const cddp_backend *CPU, *GPU;

/* tolerances of issue 7 */
#define TOL_F32 1e-5
#define TOL_TF32 1e-3
#define TOL_HALF 1e-2

static uint64_t pu_state = 1;
static inline void pu_seed(uint64_t s) { pu_state = s * 0x9e3779b97f4a7c15ull + 777; }
static inline uint64_t pu_next(void) { /* splitmix64 */
  uint64_t z = (pu_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline float pu_f(float lo, float hi) {
  return lo + (hi - lo) * (float)((pu_next() >> 11) * (1.0 / 9007199254740992.0));
}
static inline int pu_int(int n) { return (int)(pu_next() % (uint64_t)n); }

/* A buffer living twice: h for the CPU backend, d for the CUDA backend. */
typedef struct {
  void *h, *d;
  size_t bytes;
} pair;

#define PU_MAX 64
static pair *pu_live[PU_MAX];
static int pu_nlive;

static inline pair *pu_bytes(const void *src, size_t bytes) {
  pair *p = calloc(1, sizeof *p);
  p->bytes = bytes;
  p->h = malloc(bytes ? bytes : 1);
  if (src) memcpy(p->h, src, bytes);
  else memset(p->h, 0, bytes);
  p->d = GPU->malloc(bytes);
  GPU->memcpy_h2d(p->d, p->h, bytes, GPU->compute);
  assert_true(pu_nlive < PU_MAX);
  pu_live[pu_nlive++] = p;
  return p;
}
/* n random floats in [lo, hi) */
static inline pair *pu_rand(size_t n, float lo, float hi) {
  float *t = malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) t[i] = pu_f(lo, hi);
  pair *p = pu_bytes(t, n * sizeof(float));
  free(t);
  return p;
}
static inline pair *pu_floats(const float *src, size_t n) { return pu_bytes(src, n * sizeof(float)); }
static inline pair *pu_ints(const int32_t *src, size_t n) { return pu_bytes(src, n * sizeof(int32_t)); }
static inline pair *pu_zero(size_t bytes) { return pu_bytes(NULL, bytes); }
#define PH(p) ((float *)(p)->h)
#define PD(p) ((float *)(p)->d)
#define IH(p) ((int32_t *)(p)->h)
#define ID(p) ((int32_t *)(p)->d)

static inline void pu_free_all(void) {
  GPU->stream_sync(GPU->compute);
  for (int i = 0; i < pu_nlive; i++) {
    GPU->free(pu_live[i]->d);
    free(pu_live[i]->h);
    free(pu_live[i]);
  }
  pu_nlive = 0;
}

/* Device contents (synchronises the compute stream). Caller frees. */
static inline void *pu_fetch(const pair *p) {
  void *t = malloc(p->bytes ? p->bytes : 1);
  GPU->memcpy_d2h(t, p->d, p->bytes, GPU->compute);
  return t;
}

/* Normwise relative difference of n floats (first n of the pair). */
static inline double pu_reldiff(const pair *p, size_t n, size_t *worst) {
  float *g = pu_fetch(p);
  const float *c = p->h;
  double md = 0.0, mx = 0.0;
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)g[i] - c[i]);
    if (!(d <= md)) { md = d; w = i; } /* NaN sticks */
    if (fabs((double)c[i]) > mx) mx = fabs((double)c[i]);
  }
  if (worst) *worst = w;
  free(g);
  return md / (mx > 1e-30 ? mx : 1e-30);
}

static inline void pu_check(const char *what, const pair *p, size_t n, double tol) {
  size_t w = 0;
  double r = pu_reldiff(p, n, &w);
  if (!(r <= tol)) {
    float *g = pu_fetch(p);
    fail_msg("%s: normwise relative difference %.3g > %.1g (worst [%zu]: cuda %.9g, cpu %.9g)",
             what, r, tol, w, g[w], ((float *)p->h)[w]);
  }
}
/* Bitwise equality of the whole buffer (ids, casts, flags). */
static inline void pu_check_exact(const char *what, const pair *p) {
  unsigned char *g = pu_fetch(p);
  const unsigned char *c = p->h;
  for (size_t i = 0; i < p->bytes; i++)
    if (g[i] != c[i]) fail_msg("%s: byte %zu differs (cuda %u, cpu %u)", what, i, g[i], c[i]);
  free(g);
}

#endif

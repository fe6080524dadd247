/* Helpers shared by the MPI test programs: a seeded generator, cross-rank
 * agreement (so that every rank takes the same cmocka verdict and no rank is
 * left inside a collective) and result hashes. */
#ifndef CDDP_TESTS_MPI_UTIL_H
#define CDDP_TESTS_MPI_UTIL_H

#include <stdint.h>
#include <string.h>

#include "ddp/comm.h"

static inline uint64_t tu_splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* uniform in [-1, 1) */
static inline float tu_uniform(uint64_t *s) {
  return (float)((double)(tu_splitmix(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}
static inline uint64_t tu_hash(const void *p, size_t n) {
  const unsigned char *c = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

/* 1 if ok holds on every rank. */
static inline int tu_all(cddp_comm *c, int ok) {
  float v = ok ? 0.0f : 1.0f;
  cddp_comm_wait(c, cddp_allreduce(c, &v, 1, CDDP_F32, CDDP_RED_SUM));
  return v == 0.0f;
}
/* max over ranks (of a non-negative value) */
static inline double tu_max(cddp_comm *c, double x) {
  int W = cddp_comm_world(c);
  double all[64];
  cddp_comm_wait(c, cddp_allgather(c, &x, all, sizeof x));
  double m = 0;
  for (int r = 0; r < W && r < 64; r++)
    if (all[r] > m) m = all[r];
  return m;
}
/* 1 if every rank holds the same bytes */
static inline int tu_same(cddp_comm *c, const void *p, size_t n) {
  int W = cddp_comm_world(c);
  uint64_t h = tu_hash(p, n), all[64];
  cddp_comm_wait(c, cddp_allgather(c, &h, all, sizeof h));
  for (int r = 1; r < W && r < 64; r++)
    if (all[r] != all[0]) return 0;
  return 1;
}

#endif

/* Deterministic parameter initialisation: one splitmix64 stream per parameter
 * (see layers.h for the exact definition, also documented in docs/models.md). */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "model/layers.h"

void cddp_rng_seed(cddp_rng *r, uint64_t seed, int param_id) {
  r->s = seed + (uint64_t)(param_id + 1) * 0x9E3779B97F4A7C15ull;
}

uint64_t cddp_rng_next(cddp_rng *r) { /* splitmix64 */
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double cddp_rng_uniform(cddp_rng *r) { return (double)(cddp_rng_next(r) >> 11) * 0x1.0p-53; }

double cddp_rng_normal(cddp_rng *r) {
  double u1 = 1.0 - cddp_rng_uniform(r); /* (0, 1] */
  double u2 = cddp_rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void cddp_param_init(cddp_params *ps, uint64_t seed, int id, cddp_init_kind kind, double a) {
  const cddp_param *p = &ps->p[id];
  if (!p->numel) return; /* a shard of no rows */
  float *h = cddp_xmalloc(p->numel * sizeof(float), "parameter initialisation");
  cddp_rng r;
  cddp_rng_seed(&r, seed, id);
  if (p->flags & CDDP_PARAM_SHARDED) {
    /* a shard draws what its rows draw in the whole table: skip the rows
     * before it (uniform: one draw per element; splitmix64 skips by addition) */
    if (kind != CDDP_INIT_UNIFORM && kind != CDDP_INIT_ZERO && kind != CDDP_INIT_ONE)
      cddp_die(CDDP_EXIT_RUNTIME, "%s: sharded tables are initialised uniformly", p->name);
    r.s += (uint64_t)p->row_offset * (uint64_t)p->shape[1] * 0x9E3779B97F4A7C15ull;
  }
  for (size_t i = 0; i < p->numel; i++) {
    double v = 0;
    switch (kind) {
    case CDDP_INIT_ZERO: v = 0; break;
    case CDDP_INIT_ONE: v = 1; break;
    case CDDP_INIT_NORMAL: v = a * cddp_rng_normal(&r); break;
    case CDDP_INIT_UNIFORM: v = a * (2.0 * cddp_rng_uniform(&r) - 1.0); break;
    case CDDP_INIT_TRUNC_NORMAL:
      do v = a * cddp_rng_normal(&r); while (v < -2.0 || v > 2.0); /* timm: a=-2, b=2 absolute */
      break;
    }
    h[i] = (float)v;
  }
  ps->be->memcpy_h2d(cddp_param_data(ps, id), h, p->numel * sizeof(float), ps->be->compute);
  ps->be->stream_sync(ps->be->compute);
  free(h);
}

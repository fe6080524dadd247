/* Embedding bag over one table. Tables larger than the dense threshold have
 * sparse gradients (sorted unique ids + rows, written to the parameter's
 * sp_ids/sp_rows); smaller ones are scattered into their dense gradient. */
#include <stdlib.h>

#include "core/error.h"
#include "model/layers.h"

void cddp_embbag_init(cddp_embbag *e, cddp_params *ps, const char *name, int64_t rows, int dim,
                      int bag, int mean, int64_t dense_threshold) {
  if (rows < 1 || rows > INT32_MAX)
    cddp_die(CDDP_EXIT_USAGE, "%s: table size %lld out of range [1, 2^31)", name, (long long)rows);
  *e = (cddp_embbag){.rows = rows, .dim = dim, .bag = bag, .mean = mean,
                     .sparse = rows > dense_threshold};
  int64_t shape[2] = {rows, dim};
  e->id = cddp_params_add(ps, name, 2, shape,
                          CDDP_PARAM_EMBEDDING | (e->sparse ? CDDP_PARAM_SPARSE : 0));
}

void cddp_embbag_plan(cddp_embbag *e, const cddp_lctx *c, cddp_planner *p, int nbags) {
  e->nbags = nbags;
  int cap = nbags * e->bag;
  int32_t *ids;
  float *rows;
  if (e->sparse) { /* the gradient outlives backward: the reducer reads it */
    ids = cddp_plan_act(p, (size_t)cap * sizeof(int32_t));
    rows = cddp_plan_act(p, (size_t)cap * e->dim * sizeof(float));
  }
  size_t mark = cddp_plan_mark(p);
  if (!e->sparse) {
    ids = cddp_plan_scratch(p, (size_t)cap * sizeof(int32_t));
    rows = cddp_plan_scratch(p, (size_t)cap * e->dim * sizeof(float));
  }
  e->ws = cddp_plan_scratch(p, c->be->embbag_bwd_ws_bytes(cap, e->dim));
  cddp_plan_release(p, mark);
  /* -1 ids to pad the capacity's tail after a short batch (filled once here) */
  e->pad = cddp_plan_act(p, (size_t)cap * sizeof(int32_t));
  if (e->pad) {
    int32_t *h = cddp_xmalloc((size_t)cap * sizeof(int32_t), "embedding padding");
    for (int i = 0; i < cap; i++) h[i] = -1;
    c->be->memcpy_h2d(e->pad, h, (size_t)cap * sizeof(int32_t), c->be->compute);
    c->be->stream_sync(c->be->compute);
    free(h);
  }
  e->sids = ids;
  e->srows = rows;
  if (e->sparse) {
    cddp_param *pp = &c->ps->p[e->id];
    pp->sp_ids = ids;
    pp->sp_rows = rows;
    pp->sp_cap = cap;
  }
}

void cddp_embbag_fwd(cddp_embbag *e, const cddp_lctx *c, const int32_t *ids, int ids_ld, int n,
                     float *out, int ldo) {
  e->ids = ids;
  e->ids_ld = ids_ld;
  e->n = n;
  c->be->embbag_fwd(cddp_param_data(c->ps, e->id), e->dim, ids, ids_ld, n, e->bag, e->mean, out,
                    ldo);
}

void cddp_embbag_bwd(cddp_embbag *e, const cddp_lctx *c, const float *dout, int ldo,
                     const cddp_ready_hook *h) {
  const cddp_backend *be = c->be;
  int cap = e->nbags * e->bag, used = e->n * e->bag;
  be->embbag_bwd(e->ids, e->ids_ld, e->n, e->bag, e->mean, dout, ldo, e->dim, e->sids, e->srows,
                 e->ws);
  if (used < cap) { /* a short batch: pad the planned capacity's tail with -1 / zero rows */
    be->memset0(e->srows + (size_t)used * e->dim, (size_t)(cap - used) * e->dim * sizeof(float),
                be->compute);
    be->memcpy_d2d(e->sids + used, e->pad, (size_t)(cap - used) * sizeof(int32_t), be->compute);
  }
  if (!e->sparse)
    be->sparse_to_dense(e->sids, e->srows, used, e->dim, cddp_param_grad(c->ps, e->id));
  cddp_mark_ready(h, e->id);
}

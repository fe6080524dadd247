#include "train/optimizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/optimizer_algo.h"

static const cddp_opt_algo *const g_algos[] = {
#define CDDP_OPTIMIZER(name) &cddp_opt_##name,
#include "train/optimizer_list.h"
};
#define N_ALGOS (sizeof g_algos / sizeof *g_algos)

const cddp_opt_algo *cddp_optimizer_find(const char *name) {
  char known[256];
  size_t len = 0;
  for (size_t i = 0; i < N_ALGOS; i++) {
    if (!strcmp(name, g_algos[i]->name)) return g_algos[i];
    len += snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", g_algos[i]->name);
  }
  cddp_die(CDDP_EXIT_USAGE, "--optimizer %s: unknown (%s)", name, known);
}

int cddp_optimizer_states_per_param(const cddp_opt_config *cfg) {
  return cddp_optimizer_find(cfg->name)->n_states;
}

static int cmp_range(const void *a, const void *b) {
  size_t x = ((const cddp_opt_range *)a)->off, y = ((const cddp_opt_range *)b)->off;
  return (x > y) - (x < y);
}

static float *zeroed(const cddp_backend *be, size_t n) {
  float *p = be->malloc((n ? n : 1) * sizeof(float));
  be->memset0(p, (n ? n : 1) * sizeof(float), be->compute);
  return p;
}

void cddp_optimizer_init(cddp_optimizer *o, cddp_params *ps, const cddp_backend *be,
                         const cddp_opt_config *cfg) {
  *o = (cddp_optimizer){.be = be, .ps = ps, .cfg = *cfg, .algo = cddp_optimizer_find(cfg->name)};
  /* One range per dense parameter, sorted by offset, then merged. */
  cddp_opt_range *r = cddp_xmalloc(sizeof *r * (ps->n ? ps->n : 1), "optimizer ranges");
  int n = 0;
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    if (p->flags & CDDP_PARAM_SPARSE) continue;
    r[n++] = (cddp_opt_range){p->offset, p->numel, !!(p->flags & CDDP_PARAM_NO_WD),
                              !!(p->flags & CDDP_PARAM_EMBEDDING)};
  }
  qsort(r, n, sizeof *r, cmp_range);
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (m && r[m - 1].off + r[m - 1].n == r[i].off && r[m - 1].no_wd == r[i].no_wd &&
        r[m - 1].emb == r[i].emb)
      r[m - 1].n += r[i].n;
    else
      r[m++] = r[i];
  }
  o->ranges = r;
  o->n_ranges = m;
  for (int k = 0; k < o->algo->n_states; k++) o->dense_state[k] = zeroed(be, ps->n_dense);
  if (o->algo->sparse_state_name && ps->n_master > ps->n_dense)
    o->sparse_state = zeroed(be, ps->n_master - ps->n_dense);
  o->step = be->malloc(sizeof(int));
  be->memset0(o->step, sizeof(int), be->compute);
  o->sumsq = be->malloc(sizeof(float));
  o->shard_sumsq = be->malloc(sizeof(float));
}

void cddp_optimizer_free(cddp_optimizer *o) {
  const cddp_backend *be = o->be;
  if (!be) return;
  for (int i = 0; i < CDDP_OPT_MAX_STATES; i++)
    if (o->dense_state[i]) be->free(o->dense_state[i]);
  if (o->sparse_state) be->free(o->sparse_state);
  be->free(o->step);
  be->free(o->sumsq);
  be->free(o->shard_sumsq);
  free(o->ranges);
  *o = (cddp_optimizer){0};
}

void cddp_optimizer_clip(cddp_optimizer *o, const cddp_sparse_grad *sparse, double max_norm) {
  const cddp_backend *be = o->be;
  cddp_params *ps = o->ps;
  be->memset0(o->sumsq, sizeof(float), be->compute);
  if (ps->n_dense) be->sumsq(ps->grad, ps->n_dense, o->sumsq);
  int shards = 0;
  be->memset0(o->shard_sumsq, sizeof(float), be->compute);
  for (int i = 0; i < ps->n; i++)
    if ((ps->p[i].flags & CDDP_PARAM_SPARSE) && sparse[i].n) {
      int sh = (ps->p[i].flags & CDDP_PARAM_SHARDED) != 0;
      shards |= sh;
      be->sumsq(sparse[i].rows, (size_t)sparse[i].n * ps->p[i].shape[1],
                sh ? o->shard_sumsq : o->sumsq);
    }
  if (o->sum_ranks) { /* collective: every rank calls it, with or without rows this step */
    float x;
    be->memcpy_d2h(&x, o->shard_sumsq, sizeof x, be->compute);
    be->stream_sync(be->compute);
    o->sum_ranks(o->sum_ctx, &x);
    be->memcpy_h2d(o->shard_sumsq, &x, sizeof x, be->compute);
    shards = 1;
  }
  if (shards) be->axpy(o->sumsq, o->shard_sumsq, 1, 1.0f);
  if (ps->n_dense) be->clip_by_norm(ps->grad, ps->n_dense, o->sumsq, (float)max_norm);
  for (int i = 0; i < ps->n; i++)
    if ((ps->p[i].flags & CDDP_PARAM_SPARSE) && sparse[i].n)
      be->clip_by_norm(sparse[i].rows, (size_t)sparse[i].n * ps->p[i].shape[1], o->sumsq,
                       (float)max_norm);
}

void cddp_optimizer_step(cddp_optimizer *o, const cddp_sparse_grad *sparse, double lr_factor,
                         const int *skip) {
  const cddp_backend *be = o->be;
  cddp_params *ps = o->ps;
  const cddp_opt_config *c = &o->cfg;
  be->step_advance(o->step, skip);
  size_t hsz = ps->half ? cddp_dtype_size(ps->half_t) : 0;
  for (int i = 0; i < o->n_ranges; i++) {
    const cddp_opt_range *r = &o->ranges[i];
    cddp_opt_dense_args a = {
        .p = ps->master + r->off, .g = ps->grad + r->off, .n = r->n,
        .lr = (float)((r->emb ? c->emb_lr : c->lr) * lr_factor),
        .wd = r->no_wd ? 0.0f : (float)c->weight_decay, .step = o->step, .skip = skip,
        .half = ps->half ? (char *)ps->half + r->off * hsz : NULL, .half_t = ps->half_t};
    for (int k = 0; k < o->algo->n_states; k++) a.state[k] = o->dense_state[k] + r->off;
    o->algo->dense_step(be, c, &a);
  }
  float emb_lr = (float)(c->emb_lr * lr_factor);
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    if (!(p->flags & CDDP_PARAM_SPARSE) || !sparse[i].n) continue;
    cddp_opt_sparse_args a = {
        .table = ps->master + p->offset, .dim = (int)p->shape[1], .ids = sparse[i].ids,
        .rows = sparse[i].rows, .n = sparse[i].n, .lr = emb_lr, .skip = skip,
        .state = o->sparse_state ? o->sparse_state + (p->offset - ps->n_dense) : NULL};
    o->algo->sparse_step(be, c, &a);
  }
}

int cddp_optimizer_param_states(const cddp_optimizer *o, int id, const char **names,
                                float **ptrs) {
  const cddp_param *p = &o->ps->p[id];
  if (p->flags & CDDP_PARAM_SPARSE) {
    if (!o->sparse_state) return 0;
    names[0] = o->algo->sparse_state_name;
    ptrs[0] = o->sparse_state + (p->offset - o->ps->n_dense);
    return 1;
  }
  if (o->algo->saves_states && !o->algo->saves_states(&o->cfg)) return 0;
  for (int k = 0; k < o->algo->n_states; k++) {
    names[k] = o->algo->state_names[k];
    ptrs[k] = o->dense_state[k] + p->offset;
  }
  return o->algo->n_states;
}

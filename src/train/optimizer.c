#include "train/optimizer.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

cddp_opt_kind cddp_opt_kind_parse(const char *s) {
  if (!strcmp(s, "sgd")) return CDDP_OPT_SGD;
  if (!strcmp(s, "adamw")) return CDDP_OPT_ADAMW;
  if (!strcmp(s, "adagrad")) return CDDP_OPT_ADAGRAD;
  cddp_die(CDDP_EXIT_USAGE, "--optimizer %s: unknown (sgd, adamw or adagrad)", s);
}

int cddp_optimizer_states_per_param(const cddp_opt_config *cfg) {
  return cfg->kind == CDDP_OPT_ADAMW ? 2 : 1;
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
  *o = (cddp_optimizer){.be = be, .ps = ps, .cfg = *cfg};
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
  o->dense_state[0] = zeroed(be, ps->n_dense); /* momentum_buffer / exp_avg / sum */
  if (cfg->kind == CDDP_OPT_ADAMW) o->dense_state[1] = zeroed(be, ps->n_dense);
  if (cfg->kind != CDDP_OPT_SGD && ps->n_master > ps->n_dense)
    o->sparse_state = zeroed(be, ps->n_master - ps->n_dense);
  o->step = be->malloc(sizeof(int));
  be->memset0(o->step, sizeof(int), be->compute);
  o->sumsq = be->malloc(sizeof(float));
}

void cddp_optimizer_free(cddp_optimizer *o) {
  const cddp_backend *be = o->be;
  if (!be) return;
  for (int i = 0; i < 2; i++)
    if (o->dense_state[i]) be->free(o->dense_state[i]);
  if (o->sparse_state) be->free(o->sparse_state);
  be->free(o->step);
  be->free(o->sumsq);
  free(o->ranges);
  *o = (cddp_optimizer){0};
}

void cddp_optimizer_clip(cddp_optimizer *o, const cddp_sparse_grad *sparse, double max_norm) {
  const cddp_backend *be = o->be;
  cddp_params *ps = o->ps;
  be->memset0(o->sumsq, sizeof(float), be->compute);
  if (ps->n_dense) be->sumsq(ps->grad, ps->n_dense, o->sumsq);
  for (int i = 0; i < ps->n; i++)
    if ((ps->p[i].flags & CDDP_PARAM_SPARSE) && sparse[i].n)
      be->sumsq(sparse[i].rows, (size_t)sparse[i].n * ps->p[i].shape[1], o->sumsq);
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
    float lr = (float)((r->emb ? c->emb_lr : c->lr) * lr_factor);
    float wd = r->no_wd ? 0.0f : (float)c->weight_decay;
    float *p = ps->master + r->off, *s0 = o->dense_state[0] + r->off;
    const float *g = ps->grad + r->off;
    void *half = ps->half ? (char *)ps->half + r->off * hsz : NULL;
    switch (c->kind) {
      case CDDP_OPT_SGD:
        be->sgd_update(p, g, s0, r->n, lr, (float)c->momentum, c->nesterov, wd, skip, half,
                       ps->half_t);
        break;
      case CDDP_OPT_ADAMW:
        be->adamw_update(p, g, s0, o->dense_state[1] + r->off, r->n, lr, (float)c->beta1,
                         (float)c->beta2, (float)c->eps, wd, o->step, skip, half, ps->half_t);
        break;
      case CDDP_OPT_ADAGRAD:
        be->adagrad_update(p, g, s0, r->n, lr, (float)c->eps, wd, skip, half, ps->half_t);
        break;
    }
  }
  float emb_lr = (float)(c->emb_lr * lr_factor);
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    if (!(p->flags & CDDP_PARAM_SPARSE) || !sparse[i].n) continue;
    int dim = (int)p->shape[1];
    float *table = ps->master + p->offset;
    if (c->kind == CDDP_OPT_SGD)
      be->sparse_sgd(table, dim, sparse[i].ids, sparse[i].rows, sparse[i].n, emb_lr, skip);
    else
      be->sparse_adagrad(table, o->sparse_state + (p->offset - ps->n_dense), dim, sparse[i].ids,
                         sparse[i].rows, sparse[i].n, emb_lr, (float)c->eps, skip);
  }
}

int cddp_optimizer_param_states(const cddp_optimizer *o, int id, const char **names,
                                float **ptrs) {
  const cddp_param *p = &o->ps->p[id];
  if (p->flags & CDDP_PARAM_SPARSE) {
    if (!o->sparse_state) return 0;
    names[0] = "sum";
    ptrs[0] = o->sparse_state + (p->offset - o->ps->n_dense);
    return 1;
  }
  switch (o->cfg.kind) {
    case CDDP_OPT_SGD:
      if (o->cfg.momentum == 0) return 0;
      names[0] = "momentum_buffer";
      ptrs[0] = o->dense_state[0] + p->offset;
      return 1;
    case CDDP_OPT_ADAMW:
      names[0] = "exp_avg";
      ptrs[0] = o->dense_state[0] + p->offset;
      names[1] = "exp_avg_sq";
      ptrs[1] = o->dense_state[1] + p->offset;
      return 2;
    case CDDP_OPT_ADAGRAD:
      names[0] = "sum";
      ptrs[0] = o->dense_state[0] + p->offset;
      return 1;
  }
  return 0;
}

/* DLRM (facebookresearch/dlrm DLRM_Net, dot interaction, no self-interaction).
 * Forward: 26 embedding lookups (bag of 1, column t of sparse) -> T[:,1+t,:];
 * bottom MLP (ReLU everywhere) -> T[:,0,:]; interaction; top MLP (no
 * activation on the last layer); BCE with logits.
 * Backward produces gradients in exact reverse registration order:
 * top_l (last layer first), bot_l (last layer first), emb_l.25 .. emb_l.0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model_internal.h"

#define NT CDDP_CTR_SPARSE

typedef struct {
  cddp_lctx c;
  cddp_planner pl;
  int D;
  cddp_embbag emb[NT];
  int sharded[NT];   /* table t lives in sh, not emb[t] (emb[t] keeps id/rows) */
  cddp_shemb sh;
  cddp_mlp bot, top;
  cddp_interaction it;
  float *dlogits; /* act [B] */
  float *dinter;  /* scratch [B, out_cols] */
  float *dbot;    /* scratch [B, D] */
  int n;
} dlrm_impl;

typedef struct {
  const char *name;
  int D, nbot, ntop_hidden;
  int bot[6], top_hidden[6]; /* bottom widths from 13; top hidden widths (then 1) */
} dlrm_variant;

static const dlrm_variant variants[] = {
    {"kaggle", 16, 4, 2, {13, 512, 256, 64, 16}, {512, 256}},
    {"terabyte", 128, 3, 4, {13, 512, 256, 128}, {1024, 1024, 512, 256}},
    {"tiny", 4, 2, 1, {13, 8, 4}, {8}},
};

static void dlrm_plan(cddp_model *m, cddp_planner *p) {
  dlrm_impl *d = m->impl;
  int B = m->cfg.batch;
  size_t mark = cddp_plan_mark(p);
  d->dlogits = cddp_plan_act(p, (size_t)B * sizeof(float));
  cddp_interaction_plan(&d->it, p, B, NT + 1, d->D);
  d->dinter = cddp_plan_scratch(p, (size_t)B * d->it.out_cols * sizeof(float));
  d->dbot = cddp_plan_scratch(p, (size_t)B * d->D * sizeof(float));
  for (int t = 0; t < NT; t++)
    if (!d->sharded[t]) cddp_embbag_plan(&d->emb[t], &d->c, p, B);
  cddp_shemb_plan(&d->sh, &d->c, p, B);
  cddp_mlp_plan(&d->bot, &d->c, p, B, CDDP_CTR_DENSE);
  cddp_mlp_plan(&d->top, &d->c, p, B, d->it.out_cols);
  cddp_plan_release(p, mark);
  m->logits = cddp_mlp_out(&d->top);
}

static void dlrm_forward(cddp_model *m, const cddp_batch *b, int train, float grad_scale,
                         const float *loss_scale) {
  dlrm_impl *d = m->impl;
  const cddp_lctx *c = &d->c;
  int n = b->n, D = d->D, ldT = (NT + 1) * D;
  d->n = n;
  /* the sharded tables' vectors travel while the local tables and the
   * bottom MLP compute */
  if (d->sh.n) { /* bucketed on the host: the host copy of a device batch */
    const int32_t *hs = b->host ? b->host->sparse : b->sparse, *ids[NT];
    int ld[NT];
    for (int t = 0, k = 0; t < NT; t++)
      if (d->sharded[t]) ids[k] = hs ? hs + t : NULL, ld[k++] = NT;
    cddp_shemb_fwd_start(&d->sh, c, ids, ld, n);
  }
  for (int t = 0; t < NT; t++)
    if (!d->sharded[t])
      CDDP_FWD("emb_l.", t, cddp_embbag_fwd(&d->emb[t], c, b->sparse + t, NT, n,
                                            d->it.T + (size_t)(1 + t) * D, ldT));
  CDDP_FWD("bot_l", -1, cddp_mlp_fwd(&d->bot, c, b->dense, n));
  c->be->copy2d(d->it.T, ldT, cddp_mlp_out(&d->bot), D, n, D);
  CDDP_FWD("sharded_emb", -1, cddp_shemb_fwd_finish(&d->sh, c, d->it.T));
  CDDP_FWD("interaction", -1, cddp_interaction_fwd(&d->it, c, n));
  CDDP_FWD("top_l", -1, cddp_mlp_fwd(&d->top, c, d->it.out, n));
  CDDP_FWD("loss", -1, cddp_loss_bce(c, m->logits, b->label, n, grad_scale, loss_scale,
                                     m->loss_sum, d->dlogits));
}

static void dlrm_backward(cddp_model *m, const cddp_batch *b, const cddp_ready_hook *h) {
  dlrm_impl *d = m->impl;
  const cddp_lctx *c = &d->c;
  int n = d->n, D = d->D, ldT = (NT + 1) * D;
  CDDP_BWD("top_l", -1, cddp_mlp_bwd(&d->top, c, d->dlogits, d->dinter, d->it.out_cols, h));
  CDDP_BWD("interaction", -1, cddp_interaction_bwd(&d->it, c, d->dinter));
  /* gradients to the owners travel while the bottom MLP's backward runs */
  cddp_shemb_bwd_start(&d->sh, c, d->it.dT);
  c->be->copy2d(d->dbot, D, d->it.dT, ldT, n, D);
  CDDP_BWD("bot_l", -1, cddp_mlp_bwd(&d->bot, c, d->dbot, NULL, 0, h));
  for (int t = NT - 1; t >= 0; t--)
    if (!d->sharded[t])
      CDDP_BWD("emb_l.", t, cddp_embbag_bwd(&d->emb[t], c, d->it.dT + (size_t)(1 + t) * D, ldT, h));
  CDDP_BWD("sharded_emb", -1, cddp_shemb_bwd_finish(&d->sh, c, h));
}

static void dlrm_destroy(cddp_model *m) {
  dlrm_impl *d = m->impl;
  cddp_planner_destroy(&d->pl);
  cddp_shemb_destroy(&d->sh);
  free(d);
  cddp_model_free_common(m);
}

static const cddp_model_ops dlrm_ops = {
    .forward = dlrm_forward, .backward = dlrm_backward, .destroy = dlrm_destroy};

static cddp_model *dlrm_create(const cddp_model_config *cfg, const cddp_data_info *data,
                               const cddp_backend *be, const cddp_model_comm *comm) {
  const dlrm_variant *v = cddp_model_variant(&cddp_model_dlrm, cfg->variant);
  dlrm_impl *d = cddp_xcalloc(sizeof *d, "dlrm");
  cddp_model *m = cddp_model_alloc(cfg, data, be, &dlrm_ops, &d->c);
  m->impl = d;
  d->D = v->D;
  /* registration in forward order: tables, bottom MLP, top MLP */
  char names[NT][64];
  const char *np[NT];
  int dims[NT];
  for (int t = 0; t < NT; t++) {
    snprintf(names[t], sizeof names[t], "emb_l.%d.weight", t);
    np[t] = names[t];
    dims[t] = v->D;
  }
  cddp_shard_plan plan;
  cddp_shard_plan_make(&plan, comm ? comm->world : 1, comm ? comm->rank : 0, NT, np,
                       data->table_sizes, dims, comm ? cfg->embedding_sharding : NULL,
                       comm ? cfg->embedding_plan : NULL, cfg->dense_embedding_threshold);
  cddp_shard_plan_report(&plan, cfg->emb_state_floats);
  cddp_shemb_init(&d->sh, comm, v->D, (NT + 1) * v->D, cfg->precision, cfg->grad_wire, cfg->grad_accum,
                  &m->micro, &m->a2a_wait_ms, &m->a2a_bytes);
  for (int t = 0; t < NT; t++) {
    const cddp_shard_table *st = &plan.t[t];
    if (st->kind == CDDP_SHARD_REPLICATED) {
      cddp_embbag_init(&d->emb[t], &m->params, names[t], data->table_sizes[t], v->D, 1, 0,
                       cfg->dense_embedding_threshold);
      continue;
    }
    int64_t first, count;
    cddp_shard_local(&plan, t, plan.rank, &first, &count);
    d->sharded[t] = m->sharded = 1;
    d->emb[t] = (cddp_embbag){.rows = st->rows, .dim = v->D, .bag = 1};
    d->emb[t].id = cddp_shemb_add(&d->sh, &m->params, names[t], st->rows, first, count,
                                  st->kind == CDDP_SHARD_ROW, st->owner, 1, 0, (1 + t) * v->D);
  }
  cddp_mlp_init(&d->bot, &m->params, "bot_l", v->bot, v->nbot, 1);
  int top[8], F = NT + 1;
  top[0] = v->D + F * (F - 1) / 2;
  for (int i = 0; i < v->ntop_hidden; i++) top[1 + i] = v->top_hidden[i];
  top[1 + v->ntop_hidden] = 1;
  cddp_mlp_init(&d->top, &m->params, "top_l", top, v->ntop_hidden + 1, 0);
  cddp_model_alloc_params(m, &d->c);
  cddp_model_plan(m, &d->pl, dlrm_plan);
  m->out_cols = 1;
  /* DLRM_Net init */
  for (int t = 0; t < NT; t++)
    cddp_param_init(&m->params, cfg->seed, d->emb[t].id, CDDP_INIT_UNIFORM,
                    sqrt(1.0 / (double)d->emb[t].rows));
  cddp_mlp_init_dlrm(&d->bot, &m->params, cfg->seed);
  cddp_mlp_init_dlrm(&d->top, &m->params, cfg->seed);
  cddp_params_refresh_half(&m->params);
  return m;
}

const cddp_model_desc cddp_model_dlrm = {
    .name = "dlrm",
    CDDP_MODEL_VARIANTS(variants),
    .schema = CDDP_SCHEMA_CTR,
    .metric = "auc",
    .options = "--max-table-rows --dense-embedding-threshold --embedding-sharding --embedding-plan",
    .create = dlrm_create,
};

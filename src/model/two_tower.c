/* Two-tower retrieval model.
 * user: user_emb[user_id] ⊕ mean(hist_emb[valid history ids]) -> MLP(ReLU, none) -> L2 norm
 * item: item_emb[item_id] ⊕ cat_emb[item_cat]                  -> MLP(ReLU, none) -> L2 norm
 * logits[i,j] = <u_i, v_j> / temperature - logQ_j over the in-batch items
 * (this rank's, or all ranks' with gather_negatives); softmax cross-entropy
 * with label i (rank*B + i when gathered). The similarity GEMM stays fp32
 * under AMP: 1/temperature would amplify half-precision rounding of the
 * normalised embeddings. logQ needs the batch's item ids on the host: they are
 * copied back with memcpy_d2h (B ints, or W*B after the all-gather), the one
 * host-device synchronisation of this model's step. Sharded tables bucket
 * their ids on the host: from the device batch's host copy (b->host) in
 * training and evaluation, from the evaluator's host copy for the corpus. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/logq.h"
#include "model/model_internal.h"

typedef struct {
  cddp_embbag emb_a, emb_b; /* user_emb/hist_emb or item_emb/cat_emb */
  int sharded_a, sharded_b; /* the table lives in sh (emb_* keep id and rows) */
  cddp_shemb sh;
  cddp_mlp mlp;
  float *in;    /* act [B, 2E] */
  float *out;   /* act [B, Eo] normalised */
  float *norm;  /* act [B] */
  float *din;   /* scratch [B, 2E] */
  float *dpre;  /* scratch [B, Eo] */
} tower;

typedef struct {
  cddp_lctx c;
  cddp_planner pl;
  cddp_model_comm comm;
  int gather; /* cfg.gather_negatives with world > 1 */
  int E, H1, Eo, hist, NB; /* NB: logit columns planned (B or W*B) */
  tower user, item;
  float *vall;     /* act [NB, Eo] gathered item embeddings (== item.out without gather) */
  int32_t *ids_all;/* act [NB] gathered item ids */
  float *bias;     /* act [NB] -logQ */
  int32_t *lab_local, *lab_global; /* act [B]: i, rank*B + i */
  float *dlogits;  /* act [B, NB] */
  float *du, *dvall; /* scratch [B, Eo], [NB, Eo] */
  int32_t *h_ids;  /* host [NB] */
  float *h_bias;   /* host [NB] */
  cddp_logq logq;
  int n, cols, gathered;
} tt_impl;

static void tower_plan(tower *t, const cddp_lctx *c, cddp_planner *p, int B, int E, int Eo) {
  t->in = cddp_plan_act(p, (size_t)B * 2 * E * sizeof(float));
  t->out = cddp_plan_act(p, (size_t)B * Eo * sizeof(float));
  t->norm = cddp_plan_act(p, (size_t)B * sizeof(float));
  size_t mark = cddp_plan_mark(p);
  /* our scratch first: din is live while the embedding bags run backward */
  t->din = cddp_plan_scratch(p, (size_t)B * 2 * E * sizeof(float));
  t->dpre = cddp_plan_scratch(p, (size_t)B * Eo * sizeof(float));
  if (!t->sharded_a) cddp_embbag_plan(&t->emb_a, c, p, B);
  if (!t->sharded_b) cddp_embbag_plan(&t->emb_b, c, p, B);
  cddp_shemb_plan(&t->sh, c, p, B);
  cddp_mlp_plan(&t->mlp, c, p, B, 2 * E);
  cddp_plan_release(p, mark);
}

/* ids_a: bag of 1 per row; ids_b: bag of `bag_b` per row (mean); h_ids_*:
 * their host copies (the sharded tables' bucketing reads them) */
static void tower_fwd(tower *t, const cddp_lctx *c, int E, int Eo, const int32_t *ids_a,
                      const int32_t *ids_b, const int32_t *h_ids_a, const int32_t *h_ids_b,
                      int ld_b, int n, float *out) {
  if (t->sh.n) {
    const int32_t *ids[2];
    int ld[2], k = 0;
    if (t->sharded_a) ids[k] = h_ids_a, ld[k++] = 1;
    if (t->sharded_b) ids[k] = h_ids_b, ld[k++] = ld_b;
    cddp_shemb_fwd_start(&t->sh, c, ids, ld, n);
  }
  if (!t->sharded_a) cddp_embbag_fwd(&t->emb_a, c, ids_a, 1, n, t->in, 2 * E);
  if (!t->sharded_b) cddp_embbag_fwd(&t->emb_b, c, ids_b, ld_b, n, t->in + E, 2 * E);
  cddp_shemb_fwd_finish(&t->sh, c, t->in);
  cddp_mlp_fwd(&t->mlp, c, t->in, n);
  c->be->l2norm_fwd(cddp_mlp_out(&t->mlp), out, t->norm, n, Eo, 1e-12f);
}

static void tower_bwd(tower *t, const cddp_lctx *c, int E, int Eo, int n, const float *dout,
                      const cddp_ready_hook *h) {
  c->be->l2norm_bwd(dout, t->out, t->norm, t->dpre, n, Eo);
  cddp_mlp_bwd(&t->mlp, c, t->dpre, t->din, 2 * E, h);
  cddp_shemb_bwd_start(&t->sh, c, t->din);
  if (!t->sharded_b) cddp_embbag_bwd(&t->emb_b, c, t->din + E, 2 * E, h);
  if (!t->sharded_a) cddp_embbag_bwd(&t->emb_a, c, t->din, 2 * E, h);
  cddp_shemb_bwd_finish(&t->sh, c, h);
}

static void upload_labels(const cddp_backend *be, int32_t *dst, int B, int base) {
  int32_t *h = cddp_xmalloc((size_t)B * sizeof(int32_t), "labels");
  for (int i = 0; i < B; i++) h[i] = base + i;
  be->memcpy_h2d(dst, h, (size_t)B * sizeof(int32_t), be->compute);
  be->stream_sync(be->compute);
  free(h);
}

static void tt_plan(cddp_model *m, cddp_planner *p) {
  tt_impl *d = m->impl;
  int B = m->cfg.batch, NB = d->NB, Eo = d->Eo;
  size_t mark = cddp_plan_mark(p);
  /* du/dvall are live during both towers' backward: reserve them first */
  d->du = cddp_plan_scratch(p, (size_t)B * Eo * sizeof(float));
  d->dvall = cddp_plan_scratch(p, (size_t)NB * Eo * sizeof(float));
  tower_plan(&d->user, &d->c, p, B, d->E, Eo);
  tower_plan(&d->item, &d->c, p, B, d->E, Eo);
  d->vall = d->gather ? cddp_plan_act(p, (size_t)NB * Eo * sizeof(float)) : d->item.out;
  d->ids_all = d->gather ? cddp_plan_act(p, (size_t)NB * sizeof(int32_t)) : NULL;
  d->bias = cddp_plan_act(p, (size_t)NB * sizeof(float));
  d->lab_local = cddp_plan_act(p, (size_t)B * sizeof(int32_t));
  d->lab_global = cddp_plan_act(p, (size_t)B * sizeof(int32_t));
  d->dlogits = cddp_plan_act(p, (size_t)B * NB * sizeof(float));
  m->logits = cddp_plan_act(p, (size_t)B * NB * sizeof(float));
  cddp_plan_release(p, mark);
  if (d->lab_local) {
    upload_labels(m->be, d->lab_local, B, 0);
    upload_labels(m->be, d->lab_global, B, d->comm.rank * B);
  }
}

static void tt_forward(cddp_model *m, const cddp_batch *b, int train, float grad_scale,
                       const float *loss_scale) {
  tt_impl *d = m->impl;
  const cddp_lctx *c = &d->c;
  const cddp_backend *be = c->be;
  int n = b->n, E = d->E, Eo = d->Eo, B = m->cfg.batch;
  const cddp_batch *h = b->host ? b->host : b;
  d->n = n;
  CDDP_FWD("user_tower", -1, tower_fwd(&d->user, c, E, Eo, b->user_id, b->user_hist, h->user_id,
                                       h->user_hist, d->hist, n, d->user.out));
  CDDP_FWD("item_tower", -1, tower_fwd(&d->item, c, E, Eo, b->item_id, b->item_cat, h->item_id,
                                       h->item_cat, 1, n, d->item.out));
  /* in-batch negatives: gathered from every rank only in training */
  d->gathered = train && d->gather;
  const int32_t *dev_ids = b->item_id;
  if (d->gathered) {
    if (n != B)
      cddp_die(CDDP_EXIT_USAGE, "two_tower gather_negatives needs full batches (%d of %d rows)",
               n, B);
    d->comm.allgather(d->comm.ctx, d->item.out, d->vall, (size_t)B * Eo * sizeof(float));
    d->comm.allgather(d->comm.ctx, b->item_id, d->ids_all, (size_t)B * sizeof(int32_t));
    dev_ids = d->ids_all;
    d->cols = d->NB;
  } else {
    d->cols = n;
  }
  const float *V = d->gathered ? d->vall : d->item.out;
  be->memcpy_d2h(d->h_ids, dev_ids, (size_t)d->cols * sizeof(int32_t), be->compute);
  if (train) cddp_logq_update(&d->logq, d->h_ids, d->cols);
  cddp_logq_neg(&d->logq, d->h_ids, d->cols, d->h_bias);
  be->memcpy_h2d(d->bias, d->h_bias, (size_t)d->cols * sizeof(float), be->compute);
  cddp_gemm_args g = {.transa = 0, .transb = 1, .m = n, .n = d->cols, .k = Eo,
                      .alpha = 1.0f / m->cfg.temperature, .beta = 0.0f, .ab_type = CDDP_F32,
                      .A = d->user.out, .lda = Eo, .B = V, .ldb = Eo,
                      .C = m->logits, .ldc = d->NB, .bias = d->bias};
  be->gemm(&g);
  cddp_loss_xent(c, m->logits, d->NB, d->gathered ? d->lab_global : d->lab_local, n, d->cols,
                 0.0f, grad_scale, loss_scale, m->loss_sum, d->dlogits);
}

static void tt_backward(cddp_model *m, const cddp_batch *b, const cddp_ready_hook *h) {
  tt_impl *d = m->impl;
  const cddp_lctx *c = &d->c;
  const cddp_backend *be = c->be;
  int n = d->n, Eo = d->Eo, E = d->E;
  float it = 1.0f / m->cfg.temperature;
  const float *V = d->gathered ? d->vall : d->item.out;
  /* du = dlogits V / temp; dV = dlogits^T u / temp */
  cddp_gemm_args gu = {.m = n, .n = Eo, .k = d->cols, .alpha = it, .ab_type = CDDP_F32,
                       .A = d->dlogits, .lda = d->NB, .B = V, .ldb = Eo, .C = d->du, .ldc = Eo};
  be->gemm(&gu);
  cddp_gemm_args gv = {.transa = 1, .m = d->cols, .n = Eo, .k = n, .alpha = it,
                       .ab_type = CDDP_F32, .A = d->dlogits, .lda = d->NB, .B = d->user.out,
                       .ldb = Eo, .C = d->dvall, .ldc = Eo};
  be->gemm(&gv);
  const float *dv = d->dvall;
  if (d->gathered) { /* every rank's loss depends on our items: sum, then our slice */
    d->comm.allreduce_sum(d->comm.ctx, d->dvall, (size_t)d->cols * Eo);
    dv = d->dvall + (size_t)d->comm.rank * m->cfg.batch * Eo;
  }
  CDDP_BWD("item_tower", -1, tower_bwd(&d->item, c, E, Eo, n, dv, h));
  CDDP_BWD("user_tower", -1, tower_bwd(&d->user, c, E, Eo, n, d->du, h));
}

static void tt_embed_users(cddp_model *m, const cddp_batch *b, float *out) {
  tt_impl *d = m->impl;
  const cddp_batch *h = b->host ? b->host : b;
  tower_fwd(&d->user, &d->c, d->E, d->Eo, b->user_id, b->user_hist, h->user_id, h->user_hist,
            d->hist, b->n, out);
}

static void tt_embed_items(cddp_model *m, const int32_t *item_id, const int32_t *item_cat,
                           const int32_t *h_item_id, const int32_t *h_item_cat, int n,
                           float *out) {
  tt_impl *d = m->impl;
  for (int off = 0; off < n; off += m->cfg.batch) {
    int k = n - off < m->cfg.batch ? n - off : m->cfg.batch;
    tower_fwd(&d->item, &d->c, d->E, d->Eo, item_id + off, item_cat + off, h_item_id + off,
              h_item_cat + off, 1, k, out + (size_t)off * d->Eo);
  }
}

static void tt_destroy(cddp_model *m) {
  tt_impl *d = m->impl;
  cddp_planner_destroy(&d->pl);
  m->be->host_free(d->h_ids);
  m->be->host_free(d->h_bias);
  cddp_logq_free(&d->logq);
  cddp_shemb_destroy(&d->user.sh);
  cddp_shemb_destroy(&d->item.sh);
  free(d);
  cddp_model_free_common(m);
}

/* Extra state for checkpoints: the logQ estimator (A, B, t). */
static size_t tt_state_bytes(const cddp_model *m) {
  return cddp_logq_state_bytes(&((const tt_impl *)m->impl)->logq);
}
static void tt_save_state(const cddp_model *m, void *dst) {
  cddp_logq_save(&((const tt_impl *)m->impl)->logq, dst);
}
static void tt_load_state(cddp_model *m, const void *src) {
  cddp_logq_load(&((tt_impl *)m->impl)->logq, src);
}

static const cddp_model_ops tt_ops = {.forward = tt_forward, .backward = tt_backward,
                                      .embed_users = tt_embed_users,
                                      .embed_items = tt_embed_items, .destroy = tt_destroy,
                                      .extra_state_bytes = tt_state_bytes,
                                      .save_extra_state = tt_save_state,
                                      .load_extra_state = tt_load_state};

/* Table k of the plan as emb (replicated) or as a shard in t->sh. */
static int table_init(tower *t, cddp_embbag *emb, cddp_params *ps, const cddp_shard_plan *plan,
                      int k, int bag, int mean, int slot, int64_t thr) {
  const cddp_shard_table *st = &plan->t[k];
  if (st->kind == CDDP_SHARD_REPLICATED) {
    cddp_embbag_init(emb, ps, st->name, st->rows, st->dim, bag, mean, thr);
    return 0;
  }
  int64_t first, count;
  cddp_shard_local(plan, k, plan->rank, &first, &count);
  *emb = (cddp_embbag){.rows = st->rows, .dim = st->dim, .bag = bag, .mean = mean};
  emb->id = cddp_shemb_add(&t->sh, ps, st->name, st->rows, first, count,
                           st->kind == CDDP_SHARD_ROW, st->owner, bag, mean, slot);
  return 1;
}

static void tower_init(tower *t, cddp_params *ps, const char *prefix, const cddp_shard_plan *plan,
                       int k, int bag_b, int mean_b, int E, int H1, int Eo, int64_t thr) {
  char name[96];
  t->sharded_a = table_init(t, &t->emb_a, ps, plan, k, 1, 0, 0, thr);
  t->sharded_b = table_init(t, &t->emb_b, ps, plan, k + 1, bag_b, mean_b, E, thr);
  int dims[3] = {2 * E, H1, Eo};
  snprintf(name, sizeof name, "%s.mlp", prefix);
  cddp_mlp_init(&t->mlp, ps, name, dims, 2, 0);
}

static void tower_init_values(tower *t, cddp_params *ps, uint64_t seed) {
  cddp_param_init(ps, seed, t->emb_a.id, CDDP_INIT_UNIFORM, sqrt(1.0 / (double)t->emb_a.rows));
  cddp_param_init(ps, seed, t->emb_b.id, CDDP_INIT_UNIFORM, sqrt(1.0 / (double)t->emb_b.rows));
  cddp_mlp_init_dlrm(&t->mlp, ps, seed);
}

typedef struct {
  const char *name;
  int E, H1, Eo; /* embedding width, tower hidden width, output width */
} tt_variant;

static const tt_variant variants[] = {{"default", 32, 128, 64}, {"tiny", 4, 8, 4}};

static cddp_model *tt_create(const cddp_model_config *cfg, const cddp_data_info *data,
                             const cddp_backend *be, const cddp_model_comm *comm) {
  const tt_variant *v = cddp_model_variant(&cddp_model_two_tower, cfg->variant);
  if (data->hist_len < 1) cddp_die(CDDP_EXIT_USAGE, "two_tower: dataset has no user_hist column");
  if (!(cfg->temperature > 0)) cddp_die(CDDP_EXIT_USAGE, "--temperature must be > 0");
  tt_impl *d = cddp_xcalloc(sizeof *d, "two_tower");
  cddp_model *m = cddp_model_alloc(cfg, data, be, &tt_ops, &d->c);
  m->impl = d;
  d->comm = comm ? *comm : (cddp_model_comm){.rank = 0, .world = 1};
  d->gather = cfg->gather_negatives && d->comm.world > 1;
  if (d->gather && (!d->comm.allgather || !d->comm.allreduce_sum))
    cddp_die(CDDP_EXIT_USAGE, "two_tower gather_negatives: no collectives given");
  d->E = v->E;
  d->H1 = v->H1;
  d->Eo = v->Eo;
  if (cfg->emb_dim > 0) d->E = cfg->emb_dim;
  d->hist = data->hist_len;
  d->NB = d->gather ? d->comm.world * cfg->batch : cfg->batch;
  int64_t thr = cfg->dense_embedding_threshold;
  /* the four tables in registration order, placed by the sharding plan */
  const char *names[4] = {"user_tower.user_emb.weight", "user_tower.hist_emb.weight",
                          "item_tower.item_emb.weight", "item_tower.cat_emb.weight"};
  int64_t rows[4] = {data->num_users, data->num_items, data->num_items, data->num_cats};
  int dims[4] = {d->E, d->E, d->E, d->E};
  cddp_shard_plan plan;
  cddp_shard_plan_make(&plan, d->comm.world, d->comm.rank, 4, names, rows, dims,
                       comm ? cfg->embedding_sharding : NULL, comm ? cfg->embedding_plan : NULL,
                       thr);
  cddp_shard_plan_report(&plan, cfg->emb_state_floats);
  cddp_shemb_init(&d->user.sh, comm, d->E, 2 * d->E, cfg->precision, cfg->grad_wire,
                  cfg->grad_accum, &m->micro, &m->a2a_wait_ms, &m->a2a_bytes);
  cddp_shemb_init(&d->item.sh, comm, d->E, 2 * d->E, cfg->precision, cfg->grad_wire,
                  cfg->grad_accum, &m->micro, &m->a2a_wait_ms, &m->a2a_bytes);
  tower_init(&d->user, &m->params, "user_tower", &plan, 0, d->hist, 1, d->E, d->H1, d->Eo, thr);
  tower_init(&d->item, &m->params, "item_tower", &plan, 2, 1, 0, d->E, d->H1, d->Eo, thr);
  m->sharded = d->user.sh.n + d->item.sh.n > 0;
  cddp_model_alloc_params(m, &d->c);
  cddp_model_plan(m, &d->pl, tt_plan);
  m->out_cols = d->NB;
  m->emb_dim = d->Eo;
  d->h_ids = be->host_alloc((size_t)d->NB * sizeof(int32_t));
  d->h_bias = be->host_alloc((size_t)d->NB * sizeof(float));
  cddp_logq_init(&d->logq, data->num_items, d->NB);
  tower_init_values(&d->user, &m->params, cfg->seed);
  tower_init_values(&d->item, &m->params, cfg->seed);
  cddp_params_refresh_half(&m->params);
  return m;
}

const cddp_model_desc cddp_model_two_tower = {
    .name = "two_tower",
    CDDP_MODEL_VARIANTS(variants),
    .schema = CDDP_SCHEMA_TWOTOWER,
    .metric = "recall",
    .options = "--emb-dim --temperature --gather-negatives --recall-k --dense-embedding-threshold",
    .create = tt_create,
};

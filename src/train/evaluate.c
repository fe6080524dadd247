#include "train/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/schema.h"

const char *cddp_metrics_kind_name(cddp_schema s) {
  return cddp_schema_get(s)->metric;
}

/* Item categories from the corpus files; later pairs win. */
static void read_corpus(int32_t *cats, int64_t num_items, const char *const *files, int nf) {
  for (int64_t i = 0; i < num_items; i++) cats[i] = 0;
  for (int f = 0; f < nf; f++) {
    if (!files[f] || !files[f][0]) continue;
    cddp_dataset *d = cddp_dataset_open(files[f]);
    if (d->info.schema != CDDP_SCHEMA_TWOTOWER)
      cddp_die(CDDP_EXIT_DATA, "%s: not a cddp.twotower.v1 file (item corpus)", files[f]);
    enum { CH = 65536 };
    int64_t *rows = cddp_xmalloc(CH * sizeof(int64_t), "corpus rows");
    int32_t *id = cddp_xmalloc(CH * sizeof(int32_t), "corpus ids");
    int32_t *cat = cddp_xmalloc(CH * sizeof(int32_t), "corpus cats");
    void *scratch = cddp_xmalloc(cddp_dataset_scratch_bytes(d, CH), "corpus scratch");
    for (int64_t r0 = 0; r0 < d->info.rows; r0 += CH) {
      int n = (int)(d->info.rows - r0 < CH ? d->info.rows - r0 : CH);
      for (int i = 0; i < n; i++) rows[i] = r0 + i;
      cddp_dataset_read(d, CDDP_TT_ITEM, rows, n, id, scratch);
      cddp_dataset_read(d, CDDP_TT_CAT, rows, n, cat, scratch);
      for (int i = 0; i < n; i++) {
        if (id[i] < 0 || id[i] >= num_items)
          cddp_die(CDDP_EXIT_DATA, "%s: row %lld: item_id %d outside [0, %lld)", files[f],
                   (long long)(r0 + i), id[i], (long long)num_items);
        cats[id[i]] = cat[i];
      }
    }
    free(rows);
    free(id);
    free(cat);
    free(scratch);
    cddp_dataset_close(d);
  }
}

void cddp_evaluator_init(cddp_evaluator *e, cddp_model *m, cddp_comm *comm, const char *path,
                         int batch, int recall_k, int64_t max_table_rows,
                         const char *const *corpus, int n_corpus) {
  const cddp_backend *be = m->be;
  int rank = cddp_comm_rank(comm), world = cddp_comm_world(comm);
  *e = (cddp_evaluator){.m = m, .be = be, .comm = comm, .rank = rank, .world = world,
                        .recall_k = recall_k, .batch = batch};
  cddp_loader_opts lo = {.rank = rank, .world = world, .batch = batch, .eval = CDDP_EVAL_CONTIGUOUS,
                         .shuffle = CDDP_SHUFFLE_NONE,
                         .max_table_rows = max_table_rows};
  if (be->is_device) lo.host_alloc = be->host_alloc, lo.host_free = be->host_free;
  e->loader = cddp_loader_open(path, &lo);
  const cddp_data_info *info = cddp_loader_info(e->loader);
  e->kind = cddp_metrics_kind_name(info->schema);
  cddp_devbatch_init(&e->db, be, info, batch);
  size_t exact = world == 1 ? (size_t)cddp_loader_samples_per_epoch(e->loader) : 0;
  if (!strcmp(e->kind, "ctr")) {
    cddp_metrics_init(&e->acc, CDDP_METRICS_CTR, exact);
    e->h_out = cddp_xmalloc(sizeof(float) * batch, "eval logits");
  } else if (!strcmp(e->kind, "class")) {
    cddp_metrics_init(&e->acc, CDDP_METRICS_CLASS, 0);
    e->h_out = cddp_xmalloc(sizeof(float) * batch * (size_t)m->out_cols, "eval logits");
  } else {
    cddp_metrics_init(&e->acc, CDDP_METRICS_RETRIEVAL, 0);
    if (!m->ops->embed_users || !m->ops->embed_items)
      cddp_die(CDDP_EXIT_USAGE, "model %s cannot embed users/items for Recall@K", m->cfg.arch);
    e->num_items = m->data.num_items;
    e->emb = m->emb_dim;
    e->chunk = 4096;
    int64_t N = e->num_items, E = e->emb;
    e->h_ids = cddp_xmalloc(sizeof(int32_t) * N, "corpus ids");
    e->h_cats = cddp_xmalloc(sizeof(int32_t) * N, "corpus categories");
    for (int64_t i = 0; i < N; i++) e->h_ids[i] = (int32_t)i;
    read_corpus(e->h_cats, N, corpus, n_corpus);
    e->d_ids = be->malloc(sizeof(int32_t) * N);
    e->d_cats = be->malloc(sizeof(int32_t) * N);
    be->memcpy_h2d(e->d_ids, e->h_ids, sizeof(int32_t) * N, be->compute);
    be->memcpy_h2d(e->d_cats, e->h_cats, sizeof(int32_t) * N, be->compute);
    be->stream_sync(be->compute);
    e->d_items = be->malloc(sizeof(float) * N * E);
    e->h_items = cddp_xmalloc(sizeof(float) * N * E, "corpus embeddings");
    e->d_users = be->malloc(sizeof(float) * batch * E);
    e->h_out = cddp_xmalloc(sizeof(float) * batch * E, "user embeddings");
    e->d_scores = be->malloc(sizeof(float) * batch * e->chunk);
    e->h_scores = cddp_xmalloc(sizeof(float) * batch * e->chunk, "scores");
    e->true_score = cddp_xmalloc(sizeof(float) * batch, "true scores");
    e->above = cddp_xmalloc(sizeof(int64_t) * batch, "ranks");
  }
  /* device staging of the metric sums (5 doubles, or the AUC histograms) */
  size_t n = e->acc.hist_pos && (size_t)e->acc.nbins > 5 ? (size_t)e->acc.nbins : 5;
  if (be->is_device && world > 1) e->d_sums = be->malloc(n * 8);
}

void cddp_evaluator_free(cddp_evaluator *e) {
  if (!e->m) return;
  const cddp_backend *be = e->be;
  cddp_loader_close(e->loader);
  cddp_devbatch_free(&e->db);
  cddp_metrics_free(&e->acc);
  free(e->h_out);
  if (e->d_sums) be->free(e->d_sums);
  if (e->d_ids) {
    be->free(e->d_ids);
    be->free(e->d_cats);
    free(e->h_ids);
    free(e->h_cats);
    be->free(e->d_items);
    be->free(e->d_users);
    be->free(e->d_scores);
    free(e->h_items);
    free(e->h_scores);
    free(e->true_score);
    free(e->above);
  }
  *e = (cddp_evaluator){0};
}

static void retrieval_batch(cddp_evaluator *e, const cddp_batch *hb, const cddp_batch *db) {
  const cddp_backend *be = e->be;
  int n = hb->n, E = e->emb;
  e->m->ops->embed_users(e->m, db, e->d_users);
  be->memcpy_d2h(e->h_out, e->d_users, sizeof(float) * n * E, be->compute);
  be->stream_sync(be->compute);
  for (int i = 0; i < n; i++) {
    const float *u = e->h_out + (size_t)i * E, *v = e->h_items + (size_t)hb->item_id[i] * E;
    float s = 0;
    for (int k = 0; k < E; k++) s += u[k] * v[k];
    e->true_score[i] = s;
    e->above[i] = 0;
  }
  for (int64_t j0 = 0; j0 < e->num_items; j0 += e->chunk) {
    int mcols = (int)(e->num_items - j0 < e->chunk ? e->num_items - j0 : e->chunk);
    cddp_gemm_args g = {.transb = 1, .m = n, .n = mcols, .k = E, .alpha = 1.0f, .beta = 0.0f,
                        .ab_type = CDDP_F32, .A = e->d_users, .lda = E,
                        .B = e->d_items + (size_t)j0 * E, .ldb = E, .C = e->d_scores,
                        .ldc = e->chunk};
    be->gemm(&g);
    be->memcpy_d2h(e->h_scores, e->d_scores, sizeof(float) * (size_t)n * e->chunk, be->compute);
    be->stream_sync(be->compute);
    cddp_rank_count(e->h_scores, e->chunk, n, mcols, j0, hb->item_id, e->true_score, e->above);
  }
  cddp_metrics_add_retrieval(&e->acc, e->above, n, e->recall_k);
}

void cddp_evaluator_run(cddp_evaluator *e, cddp_metrics_result *r) {
  const cddp_backend *be = e->be;
  cddp_model *m = e->m;
  cddp_metrics_reset(&e->acc);
  if (e->d_ids) { /* corpus embeddings with the current parameters */
    m->ops->embed_items(m, e->d_ids, e->d_cats, e->h_ids, e->h_cats, (int)e->num_items,
                        e->d_items);
    be->memcpy_d2h(e->h_items, e->d_items, sizeof(float) * e->num_items * e->emb, be->compute);
    be->stream_sync(be->compute);
  }
  cddp_loader_start_epoch(e->loader, 0);
  for (;;) {
    cddp_devbatch_before_next(&e->db);
    const cddp_batch *hb = cddp_loader_next(e->loader);
    if (m->sharded) { /* forward is collective: ranks out of batches join with empty ones */
      double more = hb != NULL;
      cddp_comm_sum_host(e->comm, &more, 1, CDDP_F64, e->d_sums);
      if (more == 0) break;
      if (!hb) {
        const cddp_batch empty = {0};
        if (e->d_ids) m->ops->embed_users(m, &empty, e->d_users);
        else m->ops->forward(m, &empty, 0, 0.0f, NULL);
        continue;
      }
    }
    if (!hb) break;
    const cddp_batch *db = cddp_devbatch_put(&e->db, hb);
    if (e->d_ids) {
      retrieval_batch(e, hb, db);
    } else {
      m->ops->forward(m, db, 0, 0.0f, NULL);
      size_t cols = e->acc.kind == CDDP_METRICS_CTR ? 1 : (size_t)m->out_cols;
      be->memcpy_d2h(e->h_out, m->logits, sizeof(float) * cols * hb->n, be->compute);
      be->stream_sync(be->compute);
      if (e->acc.kind == CDDP_METRICS_CTR)
        cddp_metrics_add_ctr(&e->acc, e->h_out, hb->label, hb->n);
      else
        cddp_metrics_add_class(&e->acc, e->h_out, m->out_cols, m->data.num_classes, hb->labels,
                               hb->n);
    }
    cddp_devbatch_consumed(&e->db);
  }
  cddp_comm_sum_host(e->comm, e->acc.sums, 5, CDDP_F64, e->d_sums);
  if (e->acc.hist_pos) {
    cddp_comm_sum_host(e->comm, e->acc.hist_pos, (size_t)e->acc.nbins, CDDP_U64, e->d_sums);
    cddp_comm_sum_host(e->comm, e->acc.hist_neg, (size_t)e->acc.nbins, CDDP_U64, e->d_sums);
  }
  cddp_metrics_result_get(&e->acc, e->world == 1, r);
}

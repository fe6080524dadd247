/* Evaluation over each rank's shard of an eval file (every sample exactly
 * once, no padding duplicates), metrics combined across ranks with
 * all-reduces of plain sums through the communication layer (exact for counts; AUC from merged
 * histograms, or exact when one rank holds all samples).
 * ctr: AUC, logloss, accuracy; image: accuracy, cross-entropy;
 * two_tower: Recall@K of the user embedding against the full item corpus
 * (item ids 0..num_items-1; each item's category taken from the (item_id,
 * item_cat) pairs of the given corpus files, unseen items category 0; a hit
 * when fewer than K items score strictly higher than the true item).
 * Every buffer is allocated by init; run allocates nothing. */
#ifndef CDDP_TRAIN_EVALUATE_H
#define CDDP_TRAIN_EVALUATE_H

#include "data/loader.h"
#include "ddp/comm.h"
#include "model/model.h"
#include "train/devbatch.h"
#include "train/metrics.h"

typedef struct {
  cddp_model *m;
  const cddp_backend *be;
  cddp_comm *comm;
  void *d_sums; /* device staging of the sums (device backends, several ranks) */
  cddp_loader *loader;
  cddp_devbatch db;
  cddp_metrics acc;
  const char *kind; /* "ctr", "class", "retrieval" */
  int rank, world, recall_k, batch;
  float *h_out;     /* host logits / user embeddings [batch, cols] */
  /* two_tower */
  int64_t num_items;
  int emb, chunk;
  int32_t *d_ids, *d_cats, *h_ids, *h_cats; /* the corpus: item ids 0..N-1 and categories */
  float *d_items, *h_items, *d_users, *d_scores, *h_scores, *true_score;
  int64_t *above;
} cddp_evaluator;

/* corpus: files whose (item_id, item_cat) pairs give item categories
 * (two_tower; NULL entries skipped). */
void cddp_evaluator_init(cddp_evaluator *e, cddp_model *m, cddp_comm *comm, const char *path,
                         int batch, int recall_k, int64_t max_table_rows,
                         const char *const *corpus, int n_corpus);
void cddp_evaluator_free(cddp_evaluator *e);
/* Collective over all ranks. */
void cddp_evaluator_run(cddp_evaluator *e, cddp_metrics_result *r);
/* Schema-level kind of metrics for a dataset. */
const char *cddp_metrics_kind_name(cddp_schema s);

#endif

/* Streaming item-frequency estimate for the logQ correction of in-batch
 * sampled softmax (Yi et al. 2019, "Sampling-bias-corrected neural modeling",
 * algorithm 2), kept on the host. State: A[h] = last step item h was seen,
 * B[h] = estimated steps between occurrences, both 0 at start; alpha 0.05.
 * Step t (1 for the first training batch): for every UNIQUE id h of the
 * (global) batch, in increasing id order: B[h] = (1-alpha) B[h] + alpha (t - A[h]);
 * A[h] = t. Then logQ_h = -log(max(B[h], 1)). */
#ifndef CDDP_MODEL_LOGQ_H
#define CDDP_MODEL_LOGQ_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t num_items, t;
  double alpha;
  double *A, *B;
  int32_t *sorted; /* cap ids: sort buffer */
  int cap;
} cddp_logq;

void cddp_logq_init(cddp_logq *q, int64_t num_items, int cap);
void cddp_logq_free(cddp_logq *q);
/* Advances t and updates the estimate with the batch's ids (n <= cap; -1 skipped). */
void cddp_logq_update(cddp_logq *q, const int32_t *ids, int n);
/* out[j] = -logQ(ids[j]) = log(max(B[ids[j]], 1)) (0 for -1 ids). */
void cddp_logq_neg(const cddp_logq *q, const int32_t *ids, int n, float *out);
/* The estimator's state for checkpoints: t (int64), then A and B (num_items
 * doubles each), host byte order. load restores exactly what save wrote. */
size_t cddp_logq_state_bytes(const cddp_logq *q);
void cddp_logq_save(const cddp_logq *q, void *dst);
void cddp_logq_load(cddp_logq *q, const void *src);

#endif

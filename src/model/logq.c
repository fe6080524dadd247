#include "model/logq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void cddp_logq_init(cddp_logq *q, int64_t num_items, int cap) {
  *q = (cddp_logq){.num_items = num_items, .alpha = 0.05, .cap = cap};
  q->A = cddp_xcalloc((size_t)num_items * sizeof(double), "logQ state");
  q->B = cddp_xcalloc((size_t)num_items * sizeof(double), "logQ state");
  q->sorted = cddp_xmalloc((size_t)cap * sizeof(int32_t), "logQ sort buffer");
}

void cddp_logq_free(cddp_logq *q) {
  free(q->A);
  free(q->B);
  free(q->sorted);
  *q = (cddp_logq){0};
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

void cddp_logq_update(cddp_logq *q, const int32_t *ids, int n) {
  q->t++;
  memcpy(q->sorted, ids, (size_t)n * sizeof(int32_t));
  qsort(q->sorted, n, sizeof(int32_t), cmp_i32);
  double t = (double)q->t;
  for (int i = 0; i < n; i++) {
    int32_t h = q->sorted[i];
    if (h < 0 || (i > 0 && h == q->sorted[i - 1])) continue;
    if (h >= q->num_items)
      cddp_die(CDDP_EXIT_DATA, "item id %d out of range [0, %lld)", h, (long long)q->num_items);
    q->B[h] = (1.0 - q->alpha) * q->B[h] + q->alpha * (t - q->A[h]);
    q->A[h] = t;
  }
}

void cddp_logq_neg(const cddp_logq *q, const int32_t *ids, int n, float *out) {
  for (int j = 0; j < n; j++) {
    int32_t h = ids[j];
    out[j] = (h < 0 || h >= q->num_items) ? 0.0f : (float)log(fmax(q->B[h], 1.0));
  }
}

size_t cddp_logq_state_bytes(const cddp_logq *q) {
  return sizeof(int64_t) + 2 * (size_t)q->num_items * sizeof(double);
}

void cddp_logq_save(const cddp_logq *q, void *dst) {
  char *p = dst;
  size_t n = (size_t)q->num_items * sizeof(double);
  memcpy(p, &q->t, sizeof(int64_t));
  memcpy(p + sizeof(int64_t), q->A, n);
  memcpy(p + sizeof(int64_t) + n, q->B, n);
}

void cddp_logq_load(cddp_logq *q, const void *src) {
  const char *p = src;
  size_t n = (size_t)q->num_items * sizeof(double);
  memcpy(&q->t, p, sizeof(int64_t));
  if (q->t < 0) cddp_die(CDDP_EXIT_DATA, "logQ state: step %lld is negative", (long long)q->t);
  memcpy(q->A, p + sizeof(int64_t), n);
  memcpy(q->B, p + sizeof(int64_t) + n, n);
}

#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void cddp_metrics_init(cddp_metrics *m, cddp_metrics_kind kind, size_t exact_cap) {
  *m = (cddp_metrics){.kind = kind};
  if (kind != CDDP_METRICS_CTR) return;
  m->nbins = CDDP_AUC_BINS;
  m->hist_pos = cddp_xcalloc(sizeof(uint64_t) * m->nbins, "AUC histogram");
  m->hist_neg = cddp_xcalloc(sizeof(uint64_t) * m->nbins, "AUC histogram");
  if (exact_cap) {
    m->cap = exact_cap;
    m->scores = cddp_xmalloc(sizeof(float) * exact_cap, "AUC scores");
    m->labels = cddp_xmalloc(sizeof(float) * exact_cap, "AUC labels");
  }
}

void cddp_metrics_free(cddp_metrics *m) {
  free(m->hist_pos);
  free(m->hist_neg);
  free(m->scores);
  free(m->labels);
  *m = (cddp_metrics){0};
}

void cddp_metrics_reset(cddp_metrics *m) {
  memset(m->sums, 0, sizeof m->sums);
  if (m->hist_pos) {
    memset(m->hist_pos, 0, sizeof(uint64_t) * m->nbins);
    memset(m->hist_neg, 0, sizeof(uint64_t) * m->nbins);
  }
  m->n = 0;
}

int cddp_auc_bin(float logit, int nbins) {
  double p = 1.0 / (1.0 + exp(-(double)logit));
  int b = (int)(p * nbins);
  return b < 0 ? 0 : b >= nbins ? nbins - 1 : b;
}

void cddp_metrics_add_ctr(cddp_metrics *m, const float *logits, const float *labels, int n) {
  for (int i = 0; i < n; i++) {
    double x = logits[i], y = labels[i];
    /* BCE with logits, the stable form */
    m->sums[1] += fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
    m->sums[2] += ((x > 0) == (y > 0.5));
    m->sums[4] += y > 0.5;
    int b = cddp_auc_bin(logits[i], m->nbins);
    if (y > 0.5) m->hist_pos[b]++;
    else m->hist_neg[b]++;
    if (m->n < m->cap) {
      m->scores[m->n] = logits[i];
      m->labels[m->n] = labels[i];
      m->n++;
    }
  }
  m->sums[0] += n;
}

void cddp_metrics_add_class(cddp_metrics *m, const float *logits, int ld, int C,
                            const int32_t *labels, int n) {
  for (int i = 0; i < n; i++) {
    const float *row = logits + (size_t)i * ld;
    int arg = 0;
    double mx = row[0];
    for (int c = 1; c < C; c++)
      if (row[c] > mx) mx = row[c], arg = c;
    double se = 0;
    for (int c = 0; c < C; c++) se += exp(row[c] - mx);
    m->sums[1] += log(se) + mx - row[labels[i]];
    m->sums[2] += arg == labels[i];
  }
  m->sums[0] += n;
}

void cddp_metrics_add_retrieval(cddp_metrics *m, const int64_t *above, int n, int k) {
  for (int i = 0; i < n; i++) m->sums[3] += above[i] < k;
  m->sums[0] += n;
}

typedef struct {
  float s, y;
} pair;

static int cmp_pair(const void *a, const void *b) {
  float x = ((const pair *)a)->s, y = ((const pair *)b)->s;
  return (x > y) - (x < y);
}

double cddp_auc_exact(const float *scores, const float *labels, size_t n) {
  pair *p = cddp_xmalloc(sizeof(pair) * (n ? n : 1), "AUC sort");
  double npos = 0;
  for (size_t i = 0; i < n; i++) {
    p[i] = (pair){scores[i], labels[i]};
    npos += labels[i] > 0.5f;
  }
  double nneg = (double)n - npos;
  if (npos == 0 || nneg == 0) {
    free(p);
    return NAN;
  }
  qsort(p, n, sizeof *p, cmp_pair);
  /* Mann-Whitney U: sum of the (1-based, tie-averaged) ranks of positives. */
  double rank_sum = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    double pos = 0;
    while (j < n && p[j].s == p[i].s) pos += p[j++].y > 0.5f;
    rank_sum += pos * 0.5 * ((double)(i + 1) + (double)j);
    i = j;
  }
  free(p);
  return (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
}

double cddp_auc_histogram(const uint64_t *pos, const uint64_t *neg, int nbins) {
  double npos = 0, nneg = 0, wins = 0;
  for (int b = 0; b < nbins; b++) {
    /* positives in this bin beat every negative below it and tie the ones in it */
    wins += (double)pos[b] * (nneg + 0.5 * (double)neg[b]);
    npos += pos[b];
    nneg += neg[b];
  }
  if (npos == 0 || nneg == 0) return NAN;
  return wins / (npos * nneg);
}

void cddp_metrics_result_get(const cddp_metrics *m, int use_exact, cddp_metrics_result *r) {
  double n = m->sums[0];
  *r = (cddp_metrics_result){.samples = (int64_t)n, .auc = NAN, .recall = NAN, .accuracy = NAN};
  r->loss = n > 0 ? m->sums[1] / n : NAN;
  if (m->kind != CDDP_METRICS_RETRIEVAL) r->accuracy = n > 0 ? m->sums[2] / n : NAN;
  if (m->kind == CDDP_METRICS_RETRIEVAL) {
    r->loss = NAN;
    r->recall = n > 0 ? m->sums[3] / n : NAN;
  }
  if (m->kind == CDDP_METRICS_CTR) {
    if (use_exact && m->n == (size_t)n) {
      r->auc = cddp_auc_exact(m->scores, m->labels, m->n);
      r->auc_exact = 1;
    } else {
      r->auc = cddp_auc_histogram(m->hist_pos, m->hist_neg, m->nbins);
    }
  }
}

void cddp_rank_count(const float *scores, int ld, int n, int m, int64_t item0,
                     const int32_t *true_item, const float *true_score, int64_t *above) {
  for (int i = 0; i < n; i++) {
    const float *row = scores + (size_t)i * ld;
    float t = true_score[i];
    int64_t c = 0;
    for (int j = 0; j < m; j++) c += row[j] > t;
    int64_t own = (int64_t)true_item[i] - item0;
    if (own >= 0 && own < m && row[own] > t) c--; /* rounding: the item itself never counts */
    above[i] += c;
  }
}

/* Evaluation metrics on host arrays: exact AUC (sort-based, ties get the
 * average rank), histogram AUC (for the distributed case: per-rank bin
 * counts are summed across ranks, then the AUC is read off the merged
 * histogram), logloss, accuracy, and the rank counting behind Recall@K.
 * Accumulators hold plain sums so that ranks combine them by summation
 * (evaluate.c does that with MPI); nothing here communicates. */
#ifndef CDDP_TRAIN_METRICS_H
#define CDDP_TRAIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* 2^20 bins over sigmoid(logit) in [0,1]: pairs sharing a bin count as ties,
 * which moves the AUC by at most half the share of such pairs (~1e-6). */
#define CDDP_AUC_BINS (1 << 20)

typedef enum { CDDP_METRICS_CTR = 1, CDDP_METRICS_CLASS, CDDP_METRICS_RETRIEVAL } cddp_metrics_kind;

typedef struct {
  cddp_metrics_kind kind;
  /* sums, combined across ranks by addition: [0] samples, [1] loss sum,
   * [2] correct (accuracy), [3] retrieval hits, [4] positives */
  double sums[5];
  /* ctr: histogram of sigmoid(logit) per class, combined by addition */
  uint64_t *hist_pos, *hist_neg;
  int nbins;
  /* ctr, exact AUC (single rank): every score and label, cap entries */
  float *scores, *labels;
  size_t n, cap;
} cddp_metrics;

typedef struct {
  int64_t samples;
  double loss;     /* mean per-sample loss (logloss for ctr) */
  double accuracy; /* ctr: threshold 0.5; class: argmax */
  double auc;      /* ctr; exact if computed on one rank, else histogram */
  double recall;   /* retrieval: Recall@K */
  int auc_exact;
} cddp_metrics_result;

/* exact_cap > 0 keeps up to that many (score, label) pairs for exact AUC. */
void cddp_metrics_init(cddp_metrics *m, cddp_metrics_kind kind, size_t exact_cap);
void cddp_metrics_free(cddp_metrics *m);
void cddp_metrics_reset(cddp_metrics *m);
/* ctr: logits [n], labels 0/1 */
void cddp_metrics_add_ctr(cddp_metrics *m, const float *logits, const float *labels, int n);
/* classification: logits [n, C] row stride ld, labels in [0,C) */
void cddp_metrics_add_class(cddp_metrics *m, const float *logits, int ld, int C,
                            const int32_t *labels, int n);
/* retrieval: `above[i]` = number of corpus items scoring strictly higher
 * than user i's true item; a hit is above[i] < k. */
void cddp_metrics_add_retrieval(cddp_metrics *m, const int64_t *above, int n, int k);
/* Reads the result off the (possibly merged) accumulator; use_exact picks
 * the exact AUC over the stored pairs (single-rank runs). */
void cddp_metrics_result_get(const cddp_metrics *m, int use_exact, cddp_metrics_result *r);

/* AUC of scores against 0/1 labels, exact with tied scores averaged.
 * NaN if one class is empty. */
double cddp_auc_exact(const float *scores, const float *labels, size_t n);
/* AUC from per-bin class counts (bins ordered by score). */
double cddp_auc_histogram(const uint64_t *pos, const uint64_t *neg, int nbins);
int cddp_auc_bin(float logit, int nbins);

/* Recall@K support: for users i < n, above[i] += number of items j in this
 * chunk (global ids item0 .. item0+m-1, scores[i*ld + j]) with a score
 * strictly higher than true_score[i]; the true item itself is skipped. */
void cddp_rank_count(const float *scores, int ld, int n, int m, int64_t item0,
                     const int32_t *true_item, const float *true_score, int64_t *above);

#endif

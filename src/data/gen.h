/* Synthetic datasets with a planted ground truth (docs/data.md, "Generators").
 * Every generator is deterministic in (options, seed) and writes through
 * data/writer.h. The achievable optimum is stored as root attributes:
 * ctr: bayes_auc, bayes_logloss, positive_rate (from the true probabilities
 * of the generated rows); twotower: oracle_recall_at_50 (true scores over the
 * full item corpus, all rows); images: noise_std. */
#ifndef CDDP_DATA_GEN_H
#define CDDP_DATA_GEN_H

#include <stdint.h>

#define CDDP_GEN_CTR_TABLE 10000

typedef struct {
  int64_t rows;
  uint64_t seed;
  int tsv;                /* ctr: write raw Criteo TSV (gzip when OUT ends in .gz) */
  int64_t table_size;     /* ctr: cap on the Kaggle cardinalities (default 10000) */
  int64_t num_users, num_items, num_cats; /* twotower (2000, 5000, 50) */
  int hist_len;           /* twotower (20) */
  int num_classes, height, width, channels; /* images (10, 28, 28, 1) */
  int quiet;
} cddp_gen_opts;

void cddp_gen_defaults(cddp_gen_opts *o);
void cddp_gen_ctr(const char *out, const cddp_gen_opts *o);
void cddp_gen_twotower(const char *out, const cddp_gen_opts *o);
void cddp_gen_images(const char *out, const cddp_gen_opts *o);

/* Exact ROC AUC of scores p against labels y (ties count one half);
 * sorts a copy (8 bytes per row). */
double cddp_exact_auc(const float *p, const uint8_t *y, int64_t n);

#endif

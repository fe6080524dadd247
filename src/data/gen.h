/* Synthetic datasets with a planted ground truth (docs/data.md, "Generators").
 * Every generator is deterministic in (options, seed) and writes through
 * data/writer.h. The achievable optimum is stored as root attributes:
 * ctr: bayes_auc, bayes_logloss, positive_rate (from the true probabilities
 * of the generated rows); twotower: oracle_recall_at_50 (true scores over the
 * full item corpus, all rows); images: noise_std.
 * val_rows > 0 also writes a validation file (val_out, default OUT with
 * "-val" before ".h5", as cddp convert) from the SAME planted model with an
 * independent row stream; its ground-truth attributes are computed on its own
 * rows. Both files are renamed into place only after both were written. */
#ifndef CDDP_DATA_GEN_H
#define CDDP_DATA_GEN_H

#include <stdint.h>

#include "data/batch.h"
#include "data/writer.h"

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
  int64_t val_rows;       /* 0: no validation file */
  const char *val_out;    /* NULL: cddp_val_path(OUT) */
} cddp_gen_opts;

void cddp_gen_defaults(cddp_gen_opts *o);
void cddp_gen_ctr(const char *out, const cddp_gen_opts *o);
void cddp_gen_twotower(const char *out, const cddp_gen_opts *o);
void cddp_gen_images(const char *out, const cddp_gen_opts *o);

/* Exact ROC AUC of scores p against labels y (ties count one half);
 * sorts a copy (8 bytes per row). */
double cddp_exact_auc(const float *p, const uint8_t *y, int64_t n);

/* Initial splitmix64 state of row i of the training (val = 0) or validation
 * (val = 1) stream: mix64(seed) ^ i * 0x9E3779B97F4A7C15, with seed replaced
 * by seed ^ CDDP_GEN_VAL_SALT for the validation stream. */
#define CDDP_GEN_VAL_SALT 0x76616C2D726F7773ull /* "val-rows" */
uint64_t cddp_gen_row_state(uint64_t seed, int val, int64_t i);
/* The validation file's path for OUT under o (o->val_out or OUT-val.h5);
 * dies with exit 2 when it equals OUT. */
void cddp_gen_val_path(const char *out, const cddp_gen_opts *o, char *buf, size_t cap);

/* Writes `rows` rows of stream `val` (0 train, 1 validation) of a generator's
 * planted model under a temporary name; returns the uncommitted writer. */
typedef cddp_writer *(*cddp_gen_split_fn)(const char *path, const void *model, int val, int64_t rows,
                                          const cddp_gen_opts *o, const cddp_data_info *info);
/* Writes the training rows to `out` and, with --val-rows, the validation rows
 * to `valpath`; neither file is renamed into place until both are written. */
void cddp_gen_write_splits(const char *out, const char *valpath, const void *model,
                           cddp_gen_split_fn write_split, const cddp_gen_opts *o,
                           const cddp_data_info *info);

#endif

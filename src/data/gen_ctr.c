/* cddp gen ctr: a planted logistic model over Criteo-like features.
 *
 * Row i draws from its own generator (splitmix64 seeded mix64(seed) ^
 * i * 0x9E3779B97F4A7C15), so rows are independent of how they are batched:
 *  - dense I1..I13: missing with Criteo-like rates; otherwise a log-normal
 *    count (I2 may be negative, as in Criteo); feature f = log(1 + max(x, 0));
 *  - categorical C1..C26: table sizes are Criteo Kaggle's cardinalities capped
 *    at --table-size; missing with Criteo-like rates (id 0); otherwise a
 *    Zipf(1.05) rank over ids 1..T-1;
 *  - logit z = b + sum_j w_j f_j + sum_c e_c[id_c], with w_j ~ N(0, 0.2^2)
 *    and e_c[k] ~ N(0, s_c^2), s_c ~ U(0.1, 0.4), fixed by the seed; b is set by bisection so that
 *    the mean probability over the first 100k rows is 0.25;
 *  - label ~ Bernoulli(sigmoid(z)).
 * bayes_auc and bayes_logloss score the true probabilities on the rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/gen.h"
#include "data/h5util.h"
#include "data/prng.h"
#include "data/writer.h"

static const int64_t KAGGLE_SIZES[CDDP_CTR_SPARSE] = {
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572};
static const double DENSE_MISS[CDDP_CTR_DENSE] = {0.45, 0.0, 0.21, 0.22, 0.03, 0.22, 0.04,
                                                  0.0, 0.04, 0.45, 0.04, 0.77, 0.22};
static const double CAT_MISS[CDDP_CTR_SPARSE] = {0, 0, 0.03, 0.03, 0, 0.12, 0, 0, 0, 0, 0, 0.03, 0,
                                                 0, 0, 0.03, 0, 0, 0.44, 0.44, 0.03, 0.76, 0, 0.03, 0.44, 0.44};

typedef struct {
  int64_t T[CDDP_CTR_SPARSE];
  double *cdf[CDDP_CTR_SPARSE]; /* Zipf CDF over ranks 1..T-1 */
  float *eff[CDDP_CTR_SPARSE];  /* e_c[0..T) */
  double mu[CDDP_CTR_DENSE], sd[CDDP_CTR_DENSE], w[CDDP_CTR_DENSE];
  double bias;
  uint64_t seed;
} model;

typedef struct {
  int64_t raw[CDDP_CTR_DENSE];
  uint8_t dmiss[CDDP_CTR_DENSE];
  float dense[CDDP_CTR_DENSE];
  int32_t ids[CDDP_CTR_SPARSE];
  double z; /* without the bias */
  double u; /* label draw */
} row;

static void model_init(model *m, const cddp_gen_opts *o) {
  memset(m, 0, sizeof *m);
  m->seed = o->seed;
  cddp_rng r = {cddp_mix64(o->seed ^ 0xC7A5ull)};
  for (int j = 0; j < CDDP_CTR_DENSE; j++) {
    m->mu[j] = 0.5 + 3.0 * cddp_rng_uniform(&r);
    m->sd[j] = 0.8 + 0.8 * cddp_rng_uniform(&r);
    m->w[j] = 0.2 * cddp_rng_normal(&r);
  }
  for (int c = 0; c < CDDP_CTR_SPARSE; c++) {
    int64_t T = KAGGLE_SIZES[c] < o->table_size ? KAGGLE_SIZES[c] : o->table_size;
    if (T < 2) T = 2;
    m->T[c] = T;
    m->cdf[c] = cddp_xmalloc(sizeof(double) * (size_t)(T - 1), "zipf table");
    double acc = 0;
    for (int64_t k = 1; k < T; k++) {
      acc += pow((double)k, -1.05);
      m->cdf[c][k - 1] = acc;
    }
    for (int64_t k = 0; k < T - 1; k++) m->cdf[c][k] /= acc;
    double s = 0.1 + 0.3 * cddp_rng_uniform(&r);
    m->eff[c] = cddp_xmalloc(sizeof(float) * (size_t)T, "effects");
    for (int64_t k = 0; k < T; k++) m->eff[c][k] = (float)(s * cddp_rng_normal(&r));
  }
}

static void model_free(model *m) {
  for (int c = 0; c < CDDP_CTR_SPARSE; c++) {
    free(m->cdf[c]);
    free(m->eff[c]);
  }
}

/* Row i of the training (val = 0) or validation (val = 1) stream. */
static void gen_row(const model *m, int val, int64_t i, row *x) {
  cddp_rng r = {cddp_gen_row_state(m->seed, val, i)};
  double z = 0;
  for (int j = 0; j < CDDP_CTR_DENSE; j++) {
    double u = cddp_rng_uniform(&r), g = cddp_rng_normal(&r);
    x->dmiss[j] = u < DENSE_MISS[j];
    int64_t v = 0;
    if (!x->dmiss[j]) {
      v = (int64_t)floor(exp(m->mu[j] + m->sd[j] * g)) - 1;
      if (j == 1) v -= 2; /* I2 holds small negative values in Criteo */
    }
    x->raw[j] = v;
    x->dense[j] = (float)log1p((double)(v > 0 ? v : 0));
    z += m->w[j] * x->dense[j];
  }
  for (int c = 0; c < CDDP_CTR_SPARSE; c++) {
    double u = cddp_rng_uniform(&r), q = cddp_rng_uniform(&r);
    int32_t id = 0;
    if (u >= CAT_MISS[c]) {
      const double *cdf = m->cdf[c];
      int64_t lo = 0, hi = m->T[c] - 2; /* first rank whose CDF reaches q */
      while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (cdf[mid] < q) lo = mid + 1;
        else hi = mid;
      }
      id = (int32_t)(lo + 1);
    }
    x->ids[c] = id;
    z += m->eff[c][id];
  }
  x->z = z;
  x->u = cddp_rng_uniform(&r);
}

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

static void calibrate(model *m, int64_t rows) {
  int64_t n = rows < 100000 ? rows : 100000;
  double *z = cddp_xmalloc(sizeof(double) * (size_t)n, "calibration");
  row x;
  for (int64_t i = 0; i < n; i++) {
    gen_row(m, 0, i, &x);
    z[i] = x.z;
  }
  double lo = -30, hi = 30;
  for (int it = 0; it < 100; it++) {
    double b = 0.5 * (lo + hi), s = 0;
    for (int64_t i = 0; i < n; i++) s += sigmoid(z[i] + b);
    if (s / (double)n < 0.25) lo = b;
    else hi = b;
  }
  m->bias = 0.5 * (lo + hi);
  free(z);
}

static uint32_t hex_of(const model *m, int c, int32_t id) {
  return (uint32_t)cddp_mix64(m->seed ^ ((uint64_t)(c + 1) << 40) ^ (uint64_t)id);
}

static void write_tsv(const char *out, const model *m, const cddp_gen_opts *o) {
  size_t n = strlen(out);
  int gz = n > 3 && !strcmp(out + n - 3, ".gz");
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
  cddp_tmpfile_register(tmp);
  gzFile f = gzopen(tmp, gz ? "wb1" : "wbT");
  if (!f) cddp_die(CDDP_EXIT_RUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
  gzbuffer(f, 1 << 20);
  char line[1024];
  row x;
  int64_t pos = 0;
  for (int64_t i = 0; i < o->rows; i++) {
    gen_row(m, 0, i, &x);
    int y = x.u < sigmoid(x.z + m->bias);
    int k = snprintf(line, sizeof line, "%d", y);
    for (int j = 0; j < CDDP_CTR_DENSE; j++) {
      if (x.dmiss[j]) line[k++] = '\t';
      else k += snprintf(line + k, sizeof line - (size_t)k, "\t%lld", (long long)x.raw[j]);
    }
    for (int c = 0; c < CDDP_CTR_SPARSE; c++) {
      if (!x.ids[c]) line[k++] = '\t';
      else k += snprintf(line + k, sizeof line - (size_t)k, "\t%08x", hex_of(m, c, x.ids[c]));
    }
    line[k++] = '\n';
    if (gzwrite(f, line, (unsigned)k) != k) cddp_die(CDDP_EXIT_RUNTIME, "%s: write failed (disk full?)", tmp);
    pos += y;
  }
  if (gzclose(f) != Z_OK) cddp_die(CDDP_EXIT_RUNTIME, "%s: write failed (disk full?)", tmp);
  if (rename(tmp, out) != 0) cddp_die(CDDP_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
  cddp_tmpfile_unregister(tmp);
  if (!o->quiet)
    cddp_log_info("%s: %lld Criteo TSV lines, %.1f%% positive", out, (long long)o->rows,
                  100.0 * (double)pos / (double)o->rows);
}

/* Writes `rows` rows of stream `val` under a temporary name, with the
 * ground-truth attributes of those rows; returns the uncommitted writer. */
static cddp_writer *write_split(const char *out, const void *planted, int val, int64_t rows, const cddp_gen_opts *o,
                                const cddp_data_info *info) {
  const model *m = planted;
  cddp_writer *w = cddp_writer_create(out, CDDP_SCHEMA_CTR, info);
  enum { BLK = 65536 };
  uint8_t *lab = cddp_xmalloc(BLK, "rows");
  float *dense = cddp_xmalloc(sizeof(float) * BLK * CDDP_CTR_DENSE, "rows");
  int32_t *sparse = cddp_xmalloc(sizeof(int32_t) * BLK * CDDP_CTR_SPARSE, "rows");
  float *p = cddp_xmalloc(sizeof(float) * (size_t)rows, "probabilities");
  uint8_t *y = cddp_xmalloc((size_t)rows, "labels");
  double ll = 0, pos = 0;
  row x;
  for (int64_t i0 = 0; i0 < rows; i0 += BLK) {
    int n = (int)(rows - i0 < BLK ? rows - i0 : BLK);
    for (int k = 0; k < n; k++) {
      int64_t i = i0 + k;
      gen_row(m, val, i, &x);
      double pr = sigmoid(x.z + m->bias);
      y[i] = lab[k] = x.u < pr;
      p[i] = (float)pr;
      pos += y[i];
      ll -= y[i] ? log(pr) : log1p(-pr);
      memcpy(dense + (size_t)k * CDDP_CTR_DENSE, x.dense, sizeof x.dense);
      memcpy(sparse + (size_t)k * CDDP_CTR_SPARSE, x.ids, sizeof x.ids);
    }
    cddp_writer_append(w, CDDP_CTR_LABEL, lab, n);
    cddp_writer_append(w, CDDP_CTR_DENSE_COL, dense, n);
    cddp_writer_append(w, CDDP_CTR_SPARSE_COL, sparse, n);
  }
  double auc = cddp_exact_auc(p, y, rows);
  ll /= (double)rows;
  int64_t seed = (int64_t)o->seed;
  cddp_h5_write_attr_f64(w->tmp_path, w->file, "bayes_auc", auc);
  cddp_h5_write_attr_f64(w->tmp_path, w->file, "bayes_logloss", ll);
  cddp_h5_write_attr_f64(w->tmp_path, w->file, "positive_rate", pos / (double)rows);
  cddp_h5_write_attr_i64(w->tmp_path, w->file, "gen_seed", &seed, 1);
  cddp_h5_write_attr_str(w->tmp_path, w->file, "generator", "cddp gen ctr");
  cddp_h5_write_attr_str(w->tmp_path, w->file, "split", val ? "val" : "train");
  if (!o->quiet)
    cddp_log_info("%s: %lld rows, %.1f%% positive, bayes_auc %.4f, bayes_logloss %.4f", out, (long long)rows,
                  100 * pos / (double)rows, auc, ll);
  free(lab);
  free(dense);
  free(sparse);
  free(p);
  free(y);
  return w;
}

void cddp_gen_ctr(const char *out, const cddp_gen_opts *o) {
  if (o->rows <= 0) cddp_die(CDDP_EXIT_USAGE, "gen ctr: --rows must be positive");
  if (o->val_rows < 0) cddp_die(CDDP_EXIT_USAGE, "gen ctr: --val-rows must not be negative");
  if (o->table_size < 2 || o->table_size > INT32_MAX)
    cddp_die(CDDP_EXIT_USAGE, "gen ctr: --table-size must be in [2, 2^31)");
  if (o->tsv && o->val_rows > 0) cddp_die(CDDP_EXIT_USAGE, "gen ctr: --val-rows needs h5 output, not --format tsv");
  char valpath[4096];
  if (o->val_rows > 0) cddp_gen_val_path(out, o, valpath, sizeof valpath);
  model m;
  model_init(&m, o);
  calibrate(&m, o->rows);
  if (o->tsv) {
    write_tsv(out, &m, o);
    model_free(&m);
    return;
  }
  cddp_data_info info = {.schema = CDDP_SCHEMA_CTR, .rows = o->rows};
  for (int c = 0; c < CDDP_CTR_SPARSE; c++) info.table_sizes[c] = m.T[c];
  cddp_gen_write_splits(out, valpath, &m, write_split, o, &info);
  model_free(&m);
}

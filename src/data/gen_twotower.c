/* cddp gen twotower: latent-factor users and items.
 *
 * Fixed by the seed: every item gets a category (uniform over num_cats) and a
 * vector v_i = center[cat_i] + 0.6 g (d = 16, g standard normal / sqrt(d)
 * per coordinate, centers likewise without the 0.6) and a popularity
 * pop_i = -0.8 log(rank_i) for a random rank; every user a preference vector
 * u = sum of 1..3 category centers + 0.5 g. The true score of item i for user
 * u is s(u, i) = 4 u.v_i + pop_i; a user's next item is drawn from
 * softmax(s(u, .)) over the whole corpus. Row k: a uniform user, the target
 * item drawn from that user's distribution, and a history of 1..hist_len
 * earlier items drawn from the same distribution (padded with -1).
 * oracle_recall_at_50: fraction of rows whose target is among the user's 50
 * best items by true score (all rows, full corpus) — the best a retrieval
 * model can do; a validation file (--val-rows) gets the value of its own rows.
 * Memory: num_users * num_items floats for the per-user CDFs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/gen.h"
#include "data/h5util.h"
#include "data/prng.h"
#include "data/writer.h"

enum { DIM = 16, TOPK = 50 };

static int cmp_desc_f(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x < y) - (x > y);
}

static int64_t draw(const float *cdf, int64_t n, double q) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (cdf[mid] < q) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

typedef struct {
  int64_t U, I;
  int H;
  const float *cdf, *thresh, *users, *item, *pop;
  const int32_t *cat;
} tt_model;

/* Writes `rows` rows of stream `val` (0 train, 1 validation) under a
 * temporary name with the oracle recall of those rows; returns the
 * uncommitted writer. The target is in the user's top 50 iff
 * s(u, target) >= threshold(u). */
static cddp_writer *write_split(const char *out, const void *planted, int val, int64_t rows, const cddp_gen_opts *o,
                                const cddp_data_info *info) {
  const tt_model *m = planted;
  int64_t U = m->U, I = m->I;
  int H = m->H;
  cddp_writer *w = cddp_writer_create(out, CDDP_SCHEMA_TWOTOWER, info);
  enum { BLK = 16384 };
  int32_t *uid = cddp_xmalloc(sizeof(int32_t) * BLK, "rows"), *iid = cddp_xmalloc(sizeof(int32_t) * BLK, "rows");
  int32_t *icat = cddp_xmalloc(sizeof(int32_t) * BLK, "rows");
  int32_t *hist = cddp_xmalloc(sizeof(int32_t) * BLK * (size_t)H, "rows");
  int64_t hits = 0;
  for (int64_t i0 = 0; i0 < rows; i0 += BLK) {
    int n = (int)(rows - i0 < BLK ? rows - i0 : BLK);
    for (int k = 0; k < n; k++) {
      cddp_rng rr = {cddp_gen_row_state(o->seed, val, i0 + k)};
      int64_t u = (int64_t)cddp_rng_below(&rr, (uint64_t)U);
      const float *c = m->cdf + u * I;
      int64_t t = draw(c, I, cddp_rng_uniform(&rr));
      int len = 1 + (int)cddp_rng_below(&rr, (uint64_t)H);
      for (int h = 0; h < H; h++) hist[(size_t)k * H + h] = h < len ? (int32_t)draw(c, I, cddp_rng_uniform(&rr)) : -1;
      uid[k] = (int32_t)u;
      iid[k] = (int32_t)t;
      icat[k] = m->cat[t];
      double s = 0;
      for (int d = 0; d < DIM; d++) s += m->users[u * DIM + d] * m->item[t * DIM + d];
      hits += (float)(4.0 * s + m->pop[t]) >= m->thresh[u];
    }
    cddp_writer_append(w, CDDP_TT_USER, uid, n);
    cddp_writer_append(w, CDDP_TT_HIST, hist, n);
    cddp_writer_append(w, CDDP_TT_ITEM, iid, n);
    cddp_writer_append(w, CDDP_TT_CAT, icat, n);
  }
  double rec = (double)hits / (double)rows;
  int64_t seed = (int64_t)o->seed;
  cddp_h5_write_attr_f64(w->tmp_path, w->file, "oracle_recall_at_50", rec);
  cddp_h5_write_attr_i64(w->tmp_path, w->file, "gen_seed", &seed, 1);
  cddp_h5_write_attr_str(w->tmp_path, w->file, "generator", "cddp gen twotower");
  cddp_h5_write_attr_str(w->tmp_path, w->file, "split", val ? "val" : "train");
  if (!o->quiet)
    cddp_log_info("%s: %lld rows, %lld users, %lld items, %lld categories, oracle_recall_at_50 %.4f", out,
                  (long long)rows, (long long)U, (long long)I, (long long)o->num_cats, rec);
  free(uid);
  free(iid);
  free(icat);
  free(hist);
  return w;
}

void cddp_gen_twotower(const char *out, const cddp_gen_opts *o) {
  int64_t U = o->num_users, I = o->num_items, C = o->num_cats;
  int H = o->hist_len;
  if (o->rows <= 0 || U <= 0 || I <= TOPK || C <= 0 || H <= 0 || U > INT32_MAX || I > INT32_MAX)
    cddp_die(CDDP_EXIT_USAGE, "gen twotower: need --rows, --num-users, --num-cats, --hist-len > 0 and --num-items > %d",
             TOPK);
  if ((double)U * (double)I > 4e8)
    cddp_die(CDDP_EXIT_USAGE, "gen twotower: num_users * num_items must stay below 4e8 (per-user CDFs in memory)");
  if (o->val_rows < 0) cddp_die(CDDP_EXIT_USAGE, "gen twotower: --val-rows must not be negative");
  char valpath[4096];
  if (o->val_rows > 0) cddp_gen_val_path(out, o, valpath, sizeof valpath);
  cddp_rng r = {cddp_mix64(o->seed ^ 0x77A0ull)};
  double sc = 1.0 / sqrt((double)DIM);
  float *center = cddp_xmalloc(sizeof(float) * (size_t)(C * DIM), "centers");
  for (int64_t i = 0; i < C * DIM; i++) center[i] = (float)(sc * cddp_rng_normal(&r));
  int32_t *cat = cddp_xmalloc(sizeof(int32_t) * (size_t)I, "item categories");
  float *item = cddp_xmalloc(sizeof(float) * (size_t)(I * DIM), "items");
  float *pop = cddp_xmalloc(sizeof(float) * (size_t)I, "popularity");
  for (int64_t i = 0; i < I; i++) {
    cat[i] = (int32_t)cddp_rng_below(&r, (uint64_t)C);
    for (int k = 0; k < DIM; k++)
      item[i * DIM + k] = center[cat[i] * DIM + k] + (float)(0.6 * sc * cddp_rng_normal(&r));
    pop[i] = (float)(-0.8 * log(1.0 + (double)cddp_rng_below(&r, (uint64_t)I)));
  }
  float *cdf = cddp_xmalloc(sizeof(float) * (size_t)(U * I), "user CDFs");
  float *thresh = cddp_xmalloc(sizeof(float) * (size_t)U, "top-50 thresholds");
  float *score = cddp_xmalloc(sizeof(float) * (size_t)I, "scores");
  float *sorted = cddp_xmalloc(sizeof(float) * (size_t)I, "scores");
  float *users = cddp_xmalloc(sizeof(float) * (size_t)(U * DIM), "users");
  for (int64_t u = 0; u < U; u++) {
    float uv[DIM] = {0};
    int m = 1 + (int)cddp_rng_below(&r, 3);
    for (int t = 0; t < m; t++) {
      int64_t c = (int64_t)cddp_rng_below(&r, (uint64_t)C);
      for (int k = 0; k < DIM; k++) uv[k] += center[c * DIM + k];
    }
    for (int k = 0; k < DIM; k++) uv[k] += (float)(0.5 * sc * cddp_rng_normal(&r));
    double mx = -1e30;
    for (int64_t i = 0; i < I; i++) {
      double s = 0;
      for (int k = 0; k < DIM; k++) s += uv[k] * item[i * DIM + k];
      score[i] = (float)(4.0 * s + pop[i]);
      if (score[i] > mx) mx = score[i];
    }
    double acc = 0;
    float *c = cdf + u * I;
    for (int64_t i = 0; i < I; i++) {
      acc += exp(score[i] - mx);
      c[i] = (float)acc;
    }
    for (int64_t i = 0; i < I; i++) c[i] = (float)(c[i] / acc);
    c[I - 1] = 1.0f;
    memcpy(sorted, score, sizeof(float) * (size_t)I);
    qsort(sorted, (size_t)I, sizeof(float), cmp_desc_f);
    thresh[u] = sorted[TOPK - 1];
    memcpy(users + u * DIM, uv, sizeof uv);
  }
  tt_model tm = {U, I, H, cdf, thresh, users, item, pop, cat};
  cddp_data_info info = {.schema = CDDP_SCHEMA_TWOTOWER, .rows = o->rows, .hist_len = H,
                         .num_users = U, .num_items = I, .num_cats = C};
  cddp_gen_write_splits(out, valpath, &tm, write_split, o, &info);
  free(center); free(cat); free(item); free(pop); free(cdf); free(thresh); free(score); free(sorted);
  free(users);
}

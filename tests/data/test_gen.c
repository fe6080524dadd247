/* Generators: planted ground truths are recorded and consistent; exact AUC
 * against a brute-force count; determinism in the seed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/log.h"
#include "data/dataset.h"
#include "data/gen.h"
#include "data/h5util.h"
#include "data/prng.h"

#include "tmpdir.h"

static double attr_f64(const char *path, const char *name) {
  hid_t f = cddp_h5_open_ro(path);
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  assert_true(a >= 0);
  double v;
  H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  H5Fclose(f);
  return v;
}

static void *read_all(cddp_dataset *d, int c) {
  int n = (int)d->info.rows;
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)n);
  for (int i = 0; i < n; i++) rows[i] = i;
  void *out = malloc(d->col[c].row_bytes * (size_t)n);
  void *scratch = malloc(cddp_dataset_scratch_bytes(d, n));
  cddp_dataset_read(d, c, rows, n, out, scratch);
  free(scratch);
  free(rows);
  return out;
}

static void test_exact_auc(void **st) {
  (void)st;
  cddp_rng r = {77};
  for (int rep = 0; rep < 5; rep++) {
    int n = 300 + rep * 37;
    float *p = malloc(sizeof(float) * (size_t)n);
    uint8_t *y = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
      p[i] = (float)cddp_rng_below(&r, 20) / 20.f; /* many ties */
      y[i] = cddp_rng_uniform(&r) < 0.2 + 0.6 * p[i];
    }
    double num = 0, pos = 0, neg = 0;
    for (int i = 0; i < n; i++) {
      if (y[i]) pos++;
      else neg++;
      if (!y[i]) continue;
      for (int j = 0; j < n; j++)
        if (!y[j]) num += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0;
    }
    assert_float_equal(cddp_exact_auc(p, y, n), num / (pos * neg), 1e-12);
    free(p);
    free(y);
  }
}

static void test_ctr(void **st) {
  (void)st;
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/ctr_a.h5", g_dir);
  snprintf(b, sizeof b, "%s/ctr_b.h5", g_dir);
  cddp_gen_opts o;
  cddp_gen_defaults(&o);
  o.rows = 30000;
  o.seed = 12;
  o.quiet = 1;
  cddp_gen_ctr(a, &o);
  cddp_gen_ctr(b, &o);
  double auc = attr_f64(a, "bayes_auc"), ll = attr_f64(a, "bayes_logloss"), pr = attr_f64(a, "positive_rate");
  assert_true(auc > 0.7 && auc < 0.9);
  assert_true(ll > 0.3 && ll < 0.56); /* below the 0.5623 of a constant 25% predictor */
  assert_true(pr > 0.23 && pr < 0.27);
  assert_float_equal(attr_f64(b, "bayes_auc"), auc, 0); /* same seed, same data */
  cddp_dataset *d = cddp_dataset_open(a);
  int32_t *sp = read_all(d, CDDP_CTR_SPARSE_COL);
  float *dn = read_all(d, CDDP_CTR_DENSE_COL);
  int64_t miss21 = 0, zero1 = 0, top1 = 0;
  for (int i = 0; i < 30000; i++) {
    for (int c = 0; c < 26; c++) assert_true(sp[i * 26 + c] >= 0 && sp[i * 26 + c] < d->info.table_sizes[c]);
    miss21 += sp[i * 26 + 21] == 0;
    top1 += sp[i * 26 + 2] == 1;
    zero1 += dn[i * 13 + 11] == 0;
  }
  assert_true(miss21 > 0.7 * 30000 && miss21 < 0.82 * 30000); /* C22 76% missing */
  assert_true(zero1 > 0.7 * 30000);                          /* I12 77% missing */
  assert_true(top1 > 0.05 * 30000);                          /* Zipf head */
  assert_int_equal(d->info.table_sizes[8], 3);               /* Kaggle C9 has 3 values */
  assert_int_equal(d->info.table_sizes[2], 10000);           /* capped */
  free(sp);
  free(dn);
  cddp_dataset_close(d);
}

static void test_twotower(void **st) {
  (void)st;
  char a[512];
  snprintf(a, sizeof a, "%s/tt.h5", g_dir);
  cddp_gen_opts o;
  cddp_gen_defaults(&o);
  o.rows = 20000;
  o.num_users = 300;
  o.num_items = 800;
  o.num_cats = 12;
  o.hist_len = 6;
  o.seed = 4;
  o.quiet = 1;
  cddp_gen_twotower(a, &o);
  double rec = attr_f64(a, "oracle_recall_at_50");
  assert_true(rec > 50.0 / 800 * 2 && rec < 1.0); /* far better than random */
  cddp_dataset *d = cddp_dataset_open(a);
  assert_int_equal(d->info.hist_len, 6);
  int32_t *it = read_all(d, CDDP_TT_ITEM), *cat = read_all(d, CDDP_TT_CAT), *h = read_all(d, CDDP_TT_HIST);
  int32_t *cat_of = malloc(sizeof(int32_t) * 800);
  for (int i = 0; i < 800; i++) cat_of[i] = -1;
  for (int i = 0; i < 20000; i++) {
    if (cat_of[it[i]] < 0) cat_of[it[i]] = cat[i];
    assert_int_equal(cat_of[it[i]], cat[i]); /* categories fixed per item */
    assert_true(h[i * 6] >= 0);               /* at least one history item */
    for (int k = 1; k < 6; k++)
      if (h[i * 6 + k - 1] < 0) assert_int_equal(h[i * 6 + k], -1); /* padding at the end */
  }
  free(it);
  free(cat);
  free(h);
  free(cat_of);
  cddp_dataset_close(d);
}

static void test_images_learnable(void **st) {
  (void)st;
  char a[512];
  snprintf(a, sizeof a, "%s/img.h5", g_dir);
  cddp_gen_opts o;
  cddp_gen_defaults(&o);
  o.rows = 2000;
  o.seed = 8;
  o.quiet = 1;
  cddp_gen_images(a, &o);
  cddp_dataset *d = cddp_dataset_open(a);
  assert_int_equal(d->info.num_classes, 10);
  uint8_t *im = read_all(d, CDDP_IMG_IMAGES);
  int32_t *lb = read_all(d, CDDP_IMG_LABELS);
  /* nearest class mean, fit on the first half, scored on the second */
  static double mean[10][784];
  int cnt[10] = {0};
  memset(mean, 0, sizeof mean);
  for (int i = 0; i < 1000; i++) {
    cnt[lb[i]]++;
    for (int k = 0; k < 784; k++) mean[lb[i]][k] += im[i * 784 + k];
  }
  for (int c = 0; c < 10; c++)
    for (int k = 0; k < 784; k++) mean[c][k] /= cnt[c] ? cnt[c] : 1;
  int ok = 0;
  for (int i = 1000; i < 2000; i++) {
    int best = 0;
    double bd = 1e300;
    for (int c = 0; c < 10; c++) {
      double s = 0;
      for (int k = 0; k < 784; k++) s += (im[i * 784 + k] - mean[c][k]) * (im[i * 784 + k] - mean[c][k]);
      if (s < bd) bd = s, best = c;
    }
    ok += best == lb[i];
  }
  assert_true(ok > 800);
  free(im);
  free(lb);
  cddp_dataset_close(d);
}

/* --val-rows: a second file from the same planted model with its own rows and
 * its own ground-truth attributes. */
static void test_val_split(void **st) {
  (void)st;
  char a[512], v[512], v2[512];
  snprintf(a, sizeof a, "%s/split.h5", g_dir);
  snprintf(v, sizeof v, "%s/split-val.h5", g_dir);
  snprintf(v2, sizeof v2, "%s/held.h5", g_dir);
  char buf[512];
  cddp_gen_opts o;
  cddp_gen_defaults(&o);
  o.val_out = NULL;
  cddp_gen_val_path(a, &o, buf, sizeof buf);
  assert_string_equal(buf, v); /* OUT-val.h5, as cddp convert */
  o.rows = 40000;
  o.val_rows = 30000;
  o.seed = 21;
  o.quiet = 1;
  cddp_gen_ctr(a, &o);
  double ta = attr_f64(a, "bayes_auc"), va = attr_f64(v, "bayes_auc");
  double tl = attr_f64(a, "bayes_logloss"), vl = attr_f64(v, "bayes_logloss");
  assert_true(va > 0.7 && va < 0.9);
  assert_true(fabs(ta - va) < 0.015); /* same model: the optimum agrees within sampling noise */
  assert_true(fabs(tl - vl) < 0.015);
  assert_true(fabs(attr_f64(v, "positive_rate") - 0.25) < 0.02); /* same calibrated bias */
  assert_true(ta != va);                                         /* but not the same rows */
  /* A different seed plants a different model: its val AUC need not match,
   * but the train/val pairs of one seed must. Also: train file unchanged by
   * adding the validation file. */
  cddp_gen_opts p = o;
  p.val_rows = 0;
  char b[512];
  snprintf(b, sizeof b, "%s/split_noval.h5", g_dir);
  cddp_gen_ctr(b, &p);
  assert_float_equal(attr_f64(b, "bayes_auc"), ta, 0);
  cddp_dataset *dt = cddp_dataset_open(a), *dv = cddp_dataset_open(v);
  assert_int_equal(dv->info.rows, 30000);
  for (int c = 0; c < 26; c++) assert_int_equal(dv->info.table_sizes[c], dt->info.table_sizes[c]);
  float *xt = read_all(dt, CDDP_CTR_DENSE_COL), *xv = read_all(dv, CDDP_CTR_DENSE_COL);
  int same = 0;
  for (int i = 0; i < 1000; i++) same += !memcmp(xt + i * 13, xv + i * 13, 13 * sizeof(float));
  assert_true(same < 50); /* independent row streams (rows with all-missing dense may coincide) */
  free(xt);
  free(xv);
  cddp_dataset_close(dt);
  cddp_dataset_close(dv);

  cddp_gen_opts t;
  cddp_gen_defaults(&t);
  t.rows = 20000;
  t.val_rows = 20000;
  t.val_out = v2;
  t.num_users = 300;
  t.num_items = 800;
  t.num_cats = 12;
  t.hist_len = 6;
  t.seed = 9;
  t.quiet = 1;
  char tt[512];
  snprintf(tt, sizeof tt, "%s/tt_split.h5", g_dir);
  cddp_gen_twotower(tt, &t);
  double tr = attr_f64(tt, "oracle_recall_at_50"), vr = attr_f64(v2, "oracle_recall_at_50");
  assert_true(vr > 0.125 && vr < 1.0);
  assert_true(fabs(tr - vr) < 0.02);
  cddp_dataset *d = cddp_dataset_open(v2);
  assert_int_equal(d->info.rows, 20000);
  assert_int_equal(d->info.num_items, 800);
  cddp_dataset_close(d);
}

static int setup(void **st) {
  (void)st;
  return tmpdir_setup("data_gen");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_auc),
      cmocka_unit_test(test_ctr),
      cmocka_unit_test(test_twotower),
      cmocka_unit_test(test_images_learnable),
      cmocka_unit_test(test_val_split),
  };
  return cmocka_run_group_tests(tests, setup, tmpdir_teardown);
}

/* AUC: exact (sort, ties averaged) against a brute-force pairwise count;
 * histogram AUC from per-"rank" histograms merged by addition within 1e-4 of
 * the exact value; Recall@K counting on a hand-made case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/metrics.h"

static uint64_t rng_state;
static double urand(void) {
  rng_state += 0x9E3779B97F4A7C15ull;
  uint64_t z = rng_state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()); }

static double brute_auc(const float *s, const float *y, int n) {
  double wins = 0, pairs = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (y[i] > 0.5f && y[j] < 0.5f) {
        pairs++;
        wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
      }
  return wins / pairs;
}

static void test_auc(void **st) {
  (void)st;
  for (uint64_t seed = 1; seed <= 4; seed++) {
    rng_state = seed * 7919;
    int n = 1500 + (int)seed * 100;
    float *s = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) {
      y[i] = urand() < 0.3 ? 1.0f : 0.0f;
      double x = nrand() + 0.8 * y[i];
      s[i] = seed % 2 ? (float)x : (float)(round(x * 4) / 4); /* even seeds: many ties */
    }
    double exact = cddp_auc_exact(s, y, n), brute = brute_auc(s, y, n);
    assert_true(fabs(exact - brute) < 1e-12);
    /* three "ranks" with uneven shards, histograms merged by addition */
    cddp_metrics r[3], all;
    int cut[4] = {0, n / 5, n / 2, n};
    for (int k = 0; k < 3; k++) {
      cddp_metrics_init(&r[k], CDDP_METRICS_CTR, 0);
      cddp_metrics_add_ctr(&r[k], s + cut[k], y + cut[k], cut[k + 1] - cut[k]);
    }
    cddp_metrics_init(&all, CDDP_METRICS_CTR, (size_t)n);
    for (int k = 0; k < 3; k++) {
      for (int b = 0; b < all.nbins; b++) {
        all.hist_pos[b] += r[k].hist_pos[b];
        all.hist_neg[b] += r[k].hist_neg[b];
      }
      for (int j = 0; j < 5; j++) all.sums[j] += r[k].sums[j];
      cddp_metrics_free(&r[k]);
    }
    cddp_metrics_result res;
    cddp_metrics_result_get(&all, 0, &res);
    assert_int_equal(res.samples, n);
    assert_false(res.auc_exact);
    if (fabs(res.auc - exact) > 1e-4) fail_msg("histogram %.7f exact %.7f", res.auc, exact);
    /* logloss and accuracy against direct formulas */
    double ll = 0, acc = 0;
    for (int i = 0; i < n; i++) {
      double p = 1 / (1 + exp(-(double)s[i]));
      ll -= y[i] > 0.5f ? log(p) : log(1 - p);
      acc += (s[i] > 0) == (y[i] > 0.5f);
    }
    assert_true(fabs(res.loss - ll / n) < 1e-9);
    assert_true(fabs(res.accuracy - acc / n) < 1e-12);
    cddp_metrics_free(&all);
    free(s);
    free(y);
  }
  float s1[] = {1, 2, 3}, y1[] = {1, 1, 1};
  assert_true(isnan(cddp_auc_exact(s1, y1, 3)));
}

static void test_class(void **st) {
  (void)st;
  float logits[] = {0, 2, 1, /* row 0: argmax 1 */ 3, 0, 0 /* row 1: argmax 0 */};
  int32_t lab[] = {1, 2};
  cddp_metrics m;
  cddp_metrics_init(&m, CDDP_METRICS_CLASS, 0);
  cddp_metrics_add_class(&m, logits, 3, 3, lab, 2);
  cddp_metrics_result r;
  cddp_metrics_result_get(&m, 1, &r);
  assert_true(fabs(r.accuracy - 0.5) < 1e-12);
  double l0 = log(exp(0) + exp(2) + exp(1)) - 2, l1 = log(exp(3) + 2) - 0;
  assert_true(fabs(r.loss - (l0 + l1) / 2) < 1e-9);
  cddp_metrics_free(&m);
}

static void test_recall(void **st) {
  (void)st;
  /* 2 users, 6 items in two chunks of 3; scores[i][j] given directly */
  float sc[2][6] = {{0.9f, 0.1f, 0.5f, 0.7f, 0.2f, 0.6f}, {0.3f, 0.8f, 0.3f, 0.1f, 0.9f, 0.0f}};
  int32_t truth[2] = {2, 0};
  float ts[2] = {0.5f, 0.3f};
  int64_t above[2] = {0, 0};
  float chunk[2][3];
  for (int c = 0; c < 2; c++) {
    for (int i = 0; i < 2; i++) memcpy(chunk[i], &sc[i][3 * c], sizeof chunk[i]);
    cddp_rank_count(&chunk[0][0], 3, 2, 3, 3 * c, truth, ts, above);
  }
  assert_int_equal(above[0], 3); /* 0.9, 0.7, 0.6 beat 0.5 */
  assert_int_equal(above[1], 2); /* 0.8, 0.9; the tie 0.3 does not count */
  cddp_metrics m;
  cddp_metrics_init(&m, CDDP_METRICS_RETRIEVAL, 0);
  cddp_metrics_add_retrieval(&m, above, 2, 3); /* K=3: user 1 hit (2<3), user 0 miss */
  cddp_metrics_result r;
  cddp_metrics_result_get(&m, 1, &r);
  assert_true(fabs(r.recall - 0.5) < 1e-12);
  cddp_metrics_reset(&m);
  cddp_metrics_add_retrieval(&m, above, 2, 4);
  cddp_metrics_result_get(&m, 1, &r);
  assert_true(fabs(r.recall - 1.0) < 1e-12);
  cddp_metrics_free(&m);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_auc), cmocka_unit_test(test_class),
                                 cmocka_unit_test(test_recall)};
  return cmocka_run_group_tests(t, NULL, NULL);
}

/* Optimizers against hand-written torch.optim reference updates over several
 * steps (skip flag, half copy), AMP unscale/check and scale update, sumsq,
 * clipping, sparse row updates. */
#include <float.h>

#include "test_util.h"

static const cddp_backend *be;

static void half_matches(const void *half, cddp_dtype t, const float *p, size_t n) {
  const uint16_t *h = half;
  for (size_t i = 0; i < n; i++) {
    uint16_t want = t == CDDP_F16 ? cddp_f32_to_f16(p[i]) : cddp_f32_to_bf16(p[i]);
    if (h[i] != want) fail_msg("half copy [%zu]: %04x want %04x", i, h[i], want);
  }
}

static void test_sgd(void **state) {
  (void)state;
  struct { float mom; int nest; float wd; } cfg[] = {{0, 0, 0}, {0, 0, 0.01f}, {0.9f, 0, 0.05f}, {0.9f, 1, 0.0f}};
  be->set_threads(2);
  for (int k = 0; k < 4; k++) {
    tu_seed(1 + k);
    size_t n = k == 3 ? 50001 : 37;
    float *p = tu_rand(n, -1, 1), *mom = calloc(n, 4), *g = malloc(n * 4);
    double *rp = malloc(n * 8), *rb = calloc(n, 8);
    uint16_t *half = malloc(n * 2);
    for (size_t i = 0; i < n; i++) rp[i] = p[i];
    float lr = 0.1f;
    for (int step = 0; step < 4; step++) {
      tu_fill(g, n, -1, 1);
      int skip = step == 2;
      be->sgd_update(p, g, cfg[k].mom ? mom : NULL, n, lr, cfg[k].mom, cfg[k].nest, cfg[k].wd, &skip, half, CDDP_BF16);
      if (skip) continue;
      for (size_t i = 0; i < n; i++) {
        double d = g[i] + (double)cfg[k].wd * rp[i];
        if (cfg[k].mom) {
          rb[i] = cfg[k].mom * rb[i] + d;
          d = cfg[k].nest ? d + cfg[k].mom * rb[i] : rb[i];
        }
        rp[i] -= lr * d;
      }
      half_matches(half, CDDP_BF16, p, n);
    }
    tu_close("sgd p", p, rp, n, 1e-6, 1e-5);
    if (cfg[k].mom) tu_close("sgd momentum", mom, rb, n, 1e-6, 1e-5);
    free(p); free(mom); free(g); free(rp); free(rb); free(half);
  }
  be->set_threads(1);
}

static void test_adamw(void **state) {
  (void)state;
  tu_seed(10);
  size_t n = 41;
  float *p = tu_rand(n, -1, 1), *m = calloc(n, 4), *v = calloc(n, 4), *g = malloc(n * 4);
  double *rp = malloc(n * 8), *rm = calloc(n, 8), *rv = calloc(n, 8);
  uint16_t *half = malloc(n * 2);
  for (size_t i = 0; i < n; i++) rp[i] = p[i];
  float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
  int step = 0, rstep = 0;
  for (int s = 0; s < 5; s++) {
    tu_fill(g, n, -1, 1);
    int skip = s == 1;
    be->step_advance(&step, &skip);
    be->adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, &step, &skip, half, CDDP_F16);
    if (skip) continue;
    rstep++;
    for (size_t i = 0; i < n; i++) {
      rp[i] *= 1 - (double)lr * wd;
      rm[i] = b1 * rm[i] + (1 - b1) * g[i];
      rv[i] = b2 * rv[i] + (1 - b2) * (double)g[i] * g[i];
      double bc1 = 1 - pow(b1, rstep), bc2 = 1 - pow(b2, rstep);
      rp[i] -= lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + eps);
    }
    half_matches(half, CDDP_F16, p, n);
  }
  assert_int_equal(step, 4);
  tu_close("adamw p", p, rp, n, 1e-6, 1e-5);
  tu_close("adamw m", m, rm, n, 1e-6, 1e-5);
  tu_close("adamw v", v, rv, n, 1e-7, 1e-5);
  free(p); free(m); free(v); free(g); free(rp); free(rm); free(rv); free(half);
}

static void test_adagrad(void **state) {
  (void)state;
  tu_seed(20);
  size_t n = 29;
  float *p = tu_rand(n, -1, 1), *sum = calloc(n, 4), *g = malloc(n * 4);
  double *rp = malloc(n * 8), *rs = calloc(n, 8);
  for (size_t i = 0; i < n; i++) rp[i] = p[i];
  float lr = 0.05f, eps = 1e-10f, wd = 0.01f;
  for (int s = 0; s < 4; s++) {
    tu_fill(g, n, -1, 1);
    int skip = s == 3;
    be->adagrad_update(p, g, sum, n, lr, eps, wd, &skip, NULL, CDDP_F32);
    if (skip) continue;
    for (size_t i = 0; i < n; i++) {
      double gi = g[i] + (double)wd * rp[i];
      rs[i] += gi * gi;
      rp[i] -= lr * gi / (sqrt(rs[i]) + eps);
    }
  }
  tu_close("adagrad p", p, rp, n, 1e-6, 1e-5);
  tu_close("adagrad sum", sum, rs, n, 1e-6, 1e-5);
  /* NULL skip means "do it" */
  float p1 = 1, g1 = 1, s1 = 0;
  be->adagrad_update(&p1, &g1, &s1, 1, 0.5f, 0, 0, NULL, NULL, CDDP_F32);
  assert_true(p1 == 0.5f && s1 == 1.0f);
  free(p); free(sum); free(g); free(rp); free(rs);
}

static void test_sparse_updates(void **state) {
  (void)state;
  tu_seed(30);
  int rows = 10, dim = 3, n = 5;
  int32_t ids[5] = {1, 4, 7, -1, -1};
  float *t = tu_rand((size_t)rows * dim, -1, 1), *st = calloc((size_t)rows * dim, 4);
  float *r = tu_rand((size_t)n * dim, -1, 1);
  double *rt = malloc((size_t)rows * dim * 8), *rst = calloc((size_t)rows * dim, 8);
  for (int i = 0; i < rows * dim; i++) rt[i] = t[i];
  float *t2 = tu_copy(t, (size_t)rows * dim);
  int skip = 0;
  for (int s = 0; s < 3; s++) {
    be->sparse_adagrad(t, st, dim, ids, r, n, 0.1f, 1e-10f, &skip);
    for (int i = 0; i < 3; i++)
      for (int d = 0; d < dim; d++) {
        size_t k = (size_t)ids[i] * dim + d;
        double gv = r[i * dim + d];
        rst[k] += gv * gv;
        rt[k] -= 0.1 * gv / (sqrt(rst[k]) + 1e-10);
      }
  }
  tu_close("sparse_adagrad table", t, rt, (size_t)rows * dim, 1e-6, 1e-5);
  tu_close("sparse_adagrad state", st, rst, (size_t)rows * dim, 1e-6, 1e-5);
  skip = 1;
  float *t3 = tu_copy(t, (size_t)rows * dim);
  be->sparse_adagrad(t, st, dim, ids, r, n, 0.1f, 1e-10f, &skip);
  be->sparse_sgd(t, dim, ids, r, n, 0.1f, &skip);
  assert_memory_equal(t, t3, (size_t)rows * dim * 4);
  free(t); free(st); free(r); free(rt); free(rst); free(t2); free(t3);
}

static void test_sparse_sgd(void **state) {
  (void)state;
  float t[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r[6] = {1, 1, 2, 2, 9, 9};
  int32_t ids[3] = {3, 0, -1};
  be->sparse_sgd(t, 2, ids, r, 3, 0.5f, NULL);
  float want[8] = {0, 1, 3, 4, 5, 6, 6.5f, 7.5f};
  assert_memory_equal(t, want, sizeof want);
}

static void test_amp(void **state) {
  (void)state;
  tu_seed(40);
  size_t n = 70000;
  float *g = tu_rand(n, -100, 100), *g0 = tu_copy(g, n);
  float scale = 1024.0f;
  int inf = 0;
  be->set_threads(2);
  be->amp_unscale_check(g, n, &scale, &inf);
  assert_int_equal(inf, 0);
  for (size_t i = 0; i < n; i++) assert_true(g[i] == g0[i] * (1.0f / 1024.0f));
  g[n - 1] = INFINITY;
  be->amp_unscale_check(g, n, &scale, &inf);
  assert_int_equal(inf, 1);
  inf = 0;
  g[n - 1] = 0;
  g[12345] = NAN;
  be->amp_unscale_check(g, n, &scale, &inf);
  assert_int_equal(inf, 1);
  /* never reset: a clean pass keeps the flag */
  g[12345] = 0;
  be->amp_unscale_check(g, n, &scale, &inf);
  assert_int_equal(inf, 1);
  /* overflow through unscaling with a scale < 1 */
  inf = 0;
  float big = 3e38f, small = 0.5f;
  be->amp_unscale_check(&big, 1, &small, &inf);
  assert_int_equal(inf, 1);
  /* the parameters' divergence check: read-only, any inf/NaN, never reset */
  float *x = tu_rand(n, -100, 100), *x0 = tu_copy(x, n);
  int nf = 0;
  be->nonfinite_any(x, n, &nf);
  assert_int_equal(nf, 0);
  x[n - 1] = -INFINITY;
  be->nonfinite_any(x, n, &nf);
  assert_int_equal(nf, 1);
  x[n - 1] = x0[n - 1];
  assert_memory_equal(x, x0, n * sizeof(float));
  nf = 0;
  x[7] = NAN;
  be->nonfinite_any(x, n, &nf);
  assert_int_equal(nf, 1);
  x[7] = FLT_MAX; /* finite */
  nf = 0;
  be->nonfinite_any(x, n, &nf);
  assert_int_equal(nf, 0);
  free(x), free(x0);
  be->set_threads(1);
  /* GradScaler update */
  float s = 65536.0f;
  int tracker = 0, found = 0;
  for (int i = 0; i < 3; i++) be->amp_update_scale(&s, &tracker, &found, 2.0f, 0.5f, 3);
  assert_true(s == 131072.0f && tracker == 0);
  be->amp_update_scale(&s, &tracker, &found, 2.0f, 0.5f, 3);
  assert_int_equal(tracker, 1);
  found = 1;
  be->amp_update_scale(&s, &tracker, &found, 2.0f, 0.5f, 3);
  assert_true(s == 65536.0f && tracker == 0);
  free(g); free(g0);
}

static void test_sumsq_clip(void **state) {
  (void)state;
  tu_seed(50);
  size_t n = 1000003;
  float *x = tu_rand(n, -1, 1);
  double ref = 0;
  for (size_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
  float acc = 2.0f, acc2 = 2.0f;
  be->set_threads(2);
  be->sumsq(x, n, &acc);
  be->sumsq(x, n, &acc2);
  be->set_threads(1);
  assert_true(fabs(acc - (ref + 2)) < 1e-6 * ref);
  assert_true(acc == acc2);
  float a1 = 0;
  be->sumsq(x, 10, &a1);
  double r1 = 0;
  for (int i = 0; i < 10; i++) r1 += (double)x[i] * x[i];
  assert_true(fabs(a1 - r1) < 1e-6);
  /* clip to norm 1: result norm ~1; no clip when already small */
  float ss = (float)ref;
  float *y = tu_copy(x, n);
  be->clip_by_norm(y, n, &ss, 1.0f);
  double coef = 1.0 / (sqrt(ref) + 1e-6), nr = 0;
  for (size_t i = 0; i < n; i++) nr += (double)y[i] * y[i];
  assert_true(fabs(sqrt(nr) - sqrt(ref) * coef) < 1e-5);
  memcpy(y, x, n * 4);
  be->clip_by_norm(y, n, &ss, 1e6f);
  assert_memory_equal(y, x, n * 4);
  free(x); free(y);
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sgd), cmocka_unit_test(test_adamw), cmocka_unit_test(test_adagrad),
      cmocka_unit_test(test_sparse_updates), cmocka_unit_test(test_sparse_sgd),
      cmocka_unit_test(test_amp), cmocka_unit_test(test_sumsq_clip)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

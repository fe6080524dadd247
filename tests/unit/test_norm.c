/* layernorm, l2norm, softmax: forward against double loops, backward
 * against analytic double references and central finite differences. */
#include "test_util.h"

static const cddp_backend *be;

typedef struct {
  int N, C;
  float *x, *w, *b, *y, *mean, *rstd, *dy, eps;
  int kind; /* 0 layernorm, 1 l2norm, 2 softmax */
} nctx;

static double fwd_obj(void *p) {
  nctx *c = p;
  if (c->kind == 0) be->layernorm_fwd(c->x, c->w, c->b, c->y, c->mean, c->rstd, c->N, c->C, c->eps);
  else if (c->kind == 1) be->l2norm_fwd(c->x, c->y, c->mean, c->N, c->C, c->eps);
  else be->softmax_fwd(c->x, c->y, c->N, c->C);
  return tu_dot(c->dy, c->y, (size_t)c->N * c->C);
}

static void layernorm_case(int N, int C, uint64_t seed) {
  tu_seed(seed);
  size_t n = (size_t)N * C;
  float *x = tu_rand(n, -2, 3), *w = tu_rand(C, 0.5f, 1.5f), *b = tu_rand(C, -0.5f, 0.5f);
  float *y = malloc(n * 4), *mean = malloc(N * 4), *rstd = malloc(N * 4), *dy = tu_rand(n, -1, 1);
  float eps = 1e-5f;
  be->layernorm_fwd(x, w, b, y, mean, rstd, N, C, eps);
  double *ry = malloc(n * 8), *rdx = malloc(n * 8), *rdw = malloc(C * 8), *rdb = malloc(C * 8);
  float *dw = tu_rand(C, -1, 1), *db = tu_rand(C, -1, 1), *dx = malloc(n * 4);
  for (int c = 0; c < C; c++) rdw[c] = dw[c], rdb[c] = db[c];
  for (int r = 0; r < N; r++) {
    const float *xr = x + (size_t)r * C;
    double mu = 0, var = 0;
    for (int c = 0; c < C; c++) mu += xr[c];
    mu /= C;
    for (int c = 0; c < C; c++) var += (xr[c] - mu) * (xr[c] - mu);
    var /= C;
    double rs = 1 / sqrt(var + eps);
    assert_true(fabs(mean[r] - mu) < 1e-5 && fabs(rstd[r] - rs) < 1e-5 * rs);
    double s1 = 0, s2 = 0;
    for (int c = 0; c < C; c++) {
      double xh = (xr[c] - mu) * rs, g = (double)dy[(size_t)r * C + c] * w[c];
      ry[(size_t)r * C + c] = xh * w[c] + b[c];
      s1 += g;
      s2 += g * xh;
      rdw[c] += dy[(size_t)r * C + c] * xh;
      rdb[c] += dy[(size_t)r * C + c];
    }
    for (int c = 0; c < C; c++) {
      double xh = (xr[c] - mu) * rs;
      rdx[(size_t)r * C + c] = rs * (dy[(size_t)r * C + c] * w[c] - s1 / C - xh * s2 / C);
    }
  }
  tu_close("layernorm y", y, ry, n, 1e-5, 1e-5);
  be->layernorm_bwd(dy, x, w, mean, rstd, dx, dw, db, N, C, 0);
  tu_close("layernorm dx", dx, rdx, n, 1e-4, 1e-4);
  { /* accumulate_dx: dx += the same gradient, so dx doubles; dw, db accumulate again */
    float *dx2 = malloc(n * 4), *dwa = calloc(C, 4), *dba = calloc(C, 4);
    double *r2 = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) { dx2[i] = dx[i]; r2[i] = 2.0 * rdx[i]; }
    be->layernorm_bwd(dy, x, w, mean, rstd, dx2, dwa, dba, N, C, 1);
    tu_close("layernorm dx accumulated", dx2, r2, n, 1e-4, 1e-4);
    free(dx2); free(dwa); free(dba); free(r2);
  }
  tu_close("layernorm dw", dw, rdw, C, 1e-4 * N, 1e-5);
  tu_close("layernorm db", db, rdb, C, 1e-5 * N, 1e-5);
  if (n <= 2000) {
    nctx c = {N, C, x, w, b, y, mean, rstd, dy, eps, 0};
    /* d/dx, d/dw (dw accumulated on top of its start: subtract it) */
    tu_fd("layernorm dx fd", x, n, dx, fwd_obj, &c, 1e-2f, 5e-3, 1);
    float *gw = malloc(C * 4), *gb = malloc(C * 4);
    memset(gw, 0, C * 4); memset(gb, 0, C * 4);
    be->layernorm_bwd(dy, x, w, mean, rstd, dx, gw, gb, N, C, 0);
    tu_fd("layernorm dw fd", w, C, gw, fwd_obj, &c, 1e-2f, 5e-3, 1);
    tu_fd("layernorm db fd", b, C, gb, fwd_obj, &c, 1e-2f, 5e-3, 1);
    free(gw); free(gb);
  }
  free(x); free(w); free(b); free(y); free(mean); free(rstd); free(dy); free(ry); free(rdx);
  free(rdw); free(rdb); free(dw); free(db); free(dx);
}

static void test_layernorm(void **state) {
  (void)state;
  layernorm_case(6, 13, 1);
  layernorm_case(3, 96, 2);
  be->set_threads(2);
  layernorm_case(517, 96, 3); /* parallel path with per-thread partials */
  /* deterministic for a fixed thread count */
  tu_seed(4);
  int N = 600, C = 64;
  size_t n = (size_t)N * C;
  float *x = tu_rand(n, -1, 1), *w = tu_rand(C, 0, 1), *dy = tu_rand(n, -1, 1), *mean = malloc(N * 4),
        *rstd = malloc(N * 4), *y = malloc(n * 4), *b = tu_rand(C, 0, 1), *dx = malloc(n * 4);
  float dw1[64] = {0}, db1[64] = {0}, dw2[64] = {0}, db2[64] = {0};
  be->layernorm_fwd(x, w, b, y, mean, rstd, N, C, 1e-6f);
  be->layernorm_bwd(dy, x, w, mean, rstd, dx, dw1, db1, N, C, 0);
  be->layernorm_bwd(dy, x, w, mean, rstd, dx, dw2, db2, N, C, 0);
  assert_memory_equal(dw1, dw2, sizeof dw1);
  assert_memory_equal(db1, db2, sizeof db1);
  be->set_threads(1);
  free(x); free(w); free(dy); free(mean); free(rstd); free(y); free(b); free(dx);
}

static void l2norm_case(int N, int C, uint64_t seed) {
  tu_seed(seed);
  size_t n = (size_t)N * C;
  float eps = 1e-3f;
  float *x = tu_rand(n, -1, 1), *y = malloc(n * 4), *nrm = malloc(N * 4), *dy = tu_rand(n, -1, 1),
        *dx = malloc(n * 4);
  for (int c = 0; c < C; c++) x[c] *= 1e-5f; /* row 0: norm below eps (clamped) */
  double *ry = malloc(n * 8), *rdx = malloc(n * 8);
  for (int r = 0; r < N; r++) {
    double s = 0, d = 0;
    for (int c = 0; c < C; c++) s += (double)x[(size_t)r * C + c] * x[(size_t)r * C + c];
    double nr = sqrt(s), clamped = nr < eps;
    nr = clamped ? eps : nr;
    for (int c = 0; c < C; c++) ry[(size_t)r * C + c] = x[(size_t)r * C + c] / nr;
    for (int c = 0; c < C; c++) d += dy[(size_t)r * C + c] * ry[(size_t)r * C + c];
    for (int c = 0; c < C; c++)
      rdx[(size_t)r * C + c] = (dy[(size_t)r * C + c] - (clamped ? 0 : ry[(size_t)r * C + c] * d)) / nr;
  }
  be->l2norm_fwd(x, y, nrm, N, C, eps);
  tu_close("l2norm y", y, ry, n, 1e-6, 1e-5);
  assert_true(nrm[0] == eps);
  be->l2norm_bwd(dy, y, nrm, dx, N, C);
  tu_close("l2norm dx", dx, rdx, n, 1e-4, 1e-4);
  if (n <= 2000) {
    nctx c = {N, C, x, NULL, NULL, y, nrm, NULL, dy, eps, 1};
    /* skip row 0 in the finite differences: its entries are ~1e-5 */
    tu_fd("l2norm fd", x + C, n - C, dx + C, fwd_obj, &c, 1e-3f, 5e-3, 1);
  }
  free(x); free(y); free(nrm); free(dy); free(dx); free(ry); free(rdx);
}

static void test_l2norm(void **state) {
  (void)state;
  l2norm_case(5, 16, 10);
  be->set_threads(2);
  l2norm_case(700, 64, 11);
  be->set_threads(1);
}

static void softmax_case(int N, int C, float range, uint64_t seed) {
  tu_seed(seed);
  size_t n = (size_t)N * C;
  float *x = tu_rand(n, -range, range), *y = malloc(n * 4), *dy = tu_rand(n, -1, 1), *dx = malloc(n * 4);
  double *ry = malloc(n * 8), *rdx = malloc(n * 8);
  for (int r = 0; r < N; r++) {
    double mx = -INFINITY, s = 0, d = 0;
    for (int c = 0; c < C; c++) mx = fmax(mx, x[(size_t)r * C + c]);
    for (int c = 0; c < C; c++) s += exp(x[(size_t)r * C + c] - mx);
    for (int c = 0; c < C; c++) ry[(size_t)r * C + c] = exp(x[(size_t)r * C + c] - mx) / s;
    for (int c = 0; c < C; c++) d += dy[(size_t)r * C + c] * ry[(size_t)r * C + c];
    for (int c = 0; c < C; c++) rdx[(size_t)r * C + c] = ry[(size_t)r * C + c] * (dy[(size_t)r * C + c] - d);
  }
  be->softmax_fwd(x, y, N, C);
  tu_close("softmax y", y, ry, n, 1e-7, 1e-5);
  float *z = tu_copy(x, n); /* in place */
  be->softmax_fwd(z, z, N, C);
  assert_memory_equal(z, y, n * 4);
  be->softmax_bwd(y, dy, dx, N, C);
  tu_close("softmax dx", dx, rdx, n, 1e-6, 1e-4);
  if (n <= 2000) {
    nctx c = {N, C, x, NULL, NULL, y, NULL, NULL, dy, 0, 2};
    tu_fd("softmax fd", x, n, dx, fwd_obj, &c, 1e-2f, 5e-3, 1);
  }
  free(x); free(y); free(dy); free(dx); free(ry); free(rdx); free(z);
}

static void test_softmax(void **state) {
  (void)state;
  softmax_case(7, 10, 3, 20);
  softmax_case(3, 1, 3, 21);
  softmax_case(4, 50, 60, 22); /* large logits: stability */
  be->set_threads(2);
  softmax_case(300, 257, 5, 23);
  be->set_threads(1);
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_layernorm), cmocka_unit_test(test_l2norm),
                                     cmocka_unit_test(test_softmax)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

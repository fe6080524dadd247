/* BCE with logits and softmax cross-entropy (label smoothing, ignored rows,
 * row stride): loss sums and gradients against double references and
 * finite differences of the loss. */
#include "test_util.h"

static const cddp_backend *be;

static void test_bce(void **state) {
  (void)state;
  tu_seed(1);
  int n = 301;
  float *x = tu_rand(n, -8, 8), *y = malloc(n * 4), *g = malloc(n * 4);
  for (int i = 0; i < n; i++) y[i] = (float)tu_int(2);
  x[0] = 60; x[1] = -60; y[0] = 0; y[1] = 1; /* extreme logits stay finite */
  double ref = 0;
  for (int i = 0; i < n; i++) {
    double xi = x[i];
    ref += fmax(xi, 0) - xi * y[i] + log1p(exp(-fabs(xi)));
  }
  float loss = 1.5f, ls = 8.0f;
  be->bce_logits(x, y, n, 0.25f, &ls, &loss, g);
  assert_true(fabs(loss - (1.5 + ref)) < 1e-5 * ref);
  for (int i = 0; i < n; i++) {
    double want = 0.25 * 8 * (1 / (1 + exp(-(double)x[i])) - y[i]);
    if (fabs(g[i] - want) > 1e-6 + 1e-5 * fabs(want)) fail_msg("bce grad[%d] %g want %g", i, g[i], want);
  }
  /* finite differences of the loss sum, grad_scale 1, no loss scale */
  be->bce_logits(x, y, n, 1.0f, NULL, &loss, g);
  for (int i = 0; i < n; i += 7) {
    float x0 = x[i], lp = 0, lm = 0, dummy[1];
    x[i] = x0 + 1e-2f;
    be->bce_logits(x + i, y + i, 1, 1.0f, NULL, &lp, dummy);
    x[i] = x0 - 1e-2f;
    be->bce_logits(x + i, y + i, 1, 1.0f, NULL, &lm, dummy);
    x[i] = x0;
    double fd = ((double)lp - lm) / 2e-2;
    if (fabs(fd - g[i]) > 2e-3) fail_msg("bce fd[%d]: %g vs %g", i, fd, g[i]);
  }
  free(x); free(y); free(g);
}

typedef struct { float *x; int ld, N, C; int32_t *lab; float eps; float *g; } xctx;
static double xent_obj(void *p) {
  xctx *c = p;
  float loss = 0;
  be->xent(c->x, c->ld, c->lab, c->N, c->C, c->eps, 1.0f, NULL, &loss, c->g);
  return loss;
}

static void xent_case(int N, int C, int ld, float eps, uint64_t seed, int fd) {
  tu_seed(seed);
  float *x = tu_rand((size_t)N * ld, -4, 4), *g = tu_rand((size_t)N * ld, -1, 1);
  float *g0 = tu_copy(g, (size_t)N * ld);
  int32_t *lab = malloc(N * 4);
  for (int r = 0; r < N; r++) lab[r] = r % 5 == 3 ? -1 : tu_int(C);
  double ref = 0;
  double *rg = malloc((size_t)N * C * 8);
  float gs = 0.5f, ls = 4.0f;
  for (int r = 0; r < N; r++) {
    const float *xr = x + (size_t)r * ld;
    double mx = -INFINITY, s = 0;
    for (int c = 0; c < C; c++) mx = fmax(mx, xr[c]);
    for (int c = 0; c < C; c++) s += exp(xr[c] - mx);
    double lse = mx + log(s);
    for (int c = 0; c < C; c++) {
      double tgt = lab[r] < 0 ? 0 : (c == lab[r] ? 1 - eps : 0) + eps / C;
      if (lab[r] >= 0) ref += tgt * (lse - xr[c]);
      rg[(size_t)r * C + c] = lab[r] < 0 ? 0 : gs * ls * (exp(xr[c] - lse) - tgt);
    }
  }
  float loss = 2.0f;
  be->set_threads(2);
  be->xent(x, ld, lab, N, C, eps, gs, &ls, &loss, g);
  be->set_threads(1);
  assert_true(fabs(loss - (2.0 + ref)) < 1e-5 * (2.0 + ref));
  for (int r = 0; r < N; r++) {
    for (int c = 0; c < C; c++) {
      double want = rg[(size_t)r * C + c], got = g[(size_t)r * ld + c];
      if (fabs(got - want) > 1e-6 + 1e-5 * fabs(want))
        fail_msg("xent grad[%d,%d] %g want %g", r, c, got, want);
    }
    for (int c = C; c < ld; c++) assert_true(g[(size_t)r * ld + c] == g0[(size_t)r * ld + c]);
  }
  if (fd) {
    float *ga = calloc((size_t)N * ld, 4), *gtmp = malloc((size_t)N * ld * 4);
    float l2 = 0;
    be->xent(x, ld, lab, N, C, eps, 1.0f, NULL, &l2, ga);
    xctx c = {x, ld, N, C, lab, eps, gtmp};
    tu_fd("xent fd", x, (size_t)N * ld, ga, xent_obj, &c, 1e-2f, 5e-3, 1);
    free(ga); free(gtmp);
  }
  free(x); free(g); free(g0); free(lab); free(rg);
}

static void test_xent(void **state) {
  (void)state;
  xent_case(9, 6, 6, 0.0f, 2, 1);
  xent_case(9, 6, 8, 0.1f, 3, 1);
  xent_case(700, 100, 103, 0.1f, 4, 0); /* parallel */
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_bce), cmocka_unit_test(test_xent)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

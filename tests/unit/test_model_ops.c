/* DLRM dot interaction (fwd/bwd/fd), ViT patchify and token assembly. */
#include "test_util.h"

static const cddp_backend *be;

typedef struct { float *T, *out, *dout; int B, F, D, ldo; } dctx;
static double dot_obj(void *p) {
  dctx *c = p;
  be->dot_interact_fwd(c->T, c->B, c->F, c->D, c->out, c->ldo);
  double s = 0;
  int w = c->D + c->F * (c->F - 1) / 2;
  for (int b = 0; b < c->B; b++) s += tu_dot(c->dout + (size_t)b * c->ldo, c->out + (size_t)b * c->ldo, w);
  return s;
}

static void dot_case(int B, int F, int D, int fd, uint64_t seed) {
  tu_seed(seed);
  int np = F * (F - 1) / 2, ldo = D + np + 3;
  float *T = tu_rand((size_t)B * F * D, -1, 1), *out = tu_rand((size_t)B * ldo, -1, 1);
  float *dout = tu_rand((size_t)B * ldo, -1, 1), *dT = tu_rand((size_t)B * F * D, -1, 1);
  float *out0 = tu_copy(out, (size_t)B * ldo);
  double *ref = malloc((size_t)(D + np) * 8), *rdT = malloc((size_t)F * D * 8);
  be->dot_interact_fwd(T, B, F, D, out, ldo);
  be->dot_interact_bwd(dout, ldo, T, B, F, D, dT);
  for (int b = 0; b < B; b++) {
    const float *t = T + (size_t)b * F * D, *g = dout + (size_t)b * ldo;
    for (int d = 0; d < D; d++) ref[d] = t[d], rdT[d] = g[d];
    for (int i = D; i < F * D; i++) rdT[i] = 0;
    int p = D;
    for (int i = 1; i < F; i++)
      for (int j = 0; j < i; j++, p++) {
        ref[p] = tu_dot(t + i * D, t + j * D, D);
        for (int d = 0; d < D; d++) {
          rdT[i * D + d] += g[p] * t[j * D + d];
          rdT[j * D + d] += g[p] * t[i * D + d];
        }
      }
    tu_close("dot_interact out", out + (size_t)b * ldo, ref, D + np, 1e-6, 1e-5);
    for (int c = D + np; c < ldo; c++) assert_true(out[(size_t)b * ldo + c] == out0[(size_t)b * ldo + c]);
    tu_close("dot_interact dT", dT + (size_t)b * F * D, rdT, (size_t)F * D, 1e-5, 1e-5);
  }
  if (fd) {
    dctx c = {T, out, dout, B, F, D, ldo};
    tu_fd("dot_interact fd", T, (size_t)B * F * D, dT, dot_obj, &c, 1e-2f, 2e-3, 1);
  }
  free(T); free(out); free(dout); free(dT); free(out0); free(ref); free(rdT);
}

static void test_dot_interact(void **state) {
  (void)state;
  dot_case(3, 5, 4, 1, 1);
  dot_case(2, 2, 3, 1, 2);
  be->set_threads(2);
  dot_case(64, 27, 16, 0, 3);
  be->set_threads(1);
  dot_case(4, 40, 16, 1, 4); /* D = 16 with more than 32 features: the generic 16-wide path */
}

static void test_patchify(void **state) {
  (void)state;
  int cfg[][4] = {{2, 8, 12, 1}, {3, 12, 8, 3}}; /* B, H, W, C; P = 4 */
  for (int k = 0; k < 2; k++) {
    tu_seed(10 + k);
    int B = cfg[k][0], H = cfg[k][1], W = cfg[k][2], C = cfg[k][3], P = 4;
    int gw = W / P, nP = (H / P) * gw, K = C * P * P;
    uint8_t *img = malloc((size_t)B * H * W * C);
    for (size_t i = 0; i < (size_t)B * H * W * C; i++) img[i] = (uint8_t)tu_int(256);
    float mean[3] = {0.2860f, 0.45f, 0.4f}, sd[3] = {0.3530f, 0.25f, 0.5f};
    float *out = malloc((size_t)B * nP * K * 4);
    be->patchify(img, B, H, W, C, P, mean, sd, out);
    for (int b = 0; b < B; b++)
      for (int p = 0; p < nP; p++)
        for (int c = 0; c < C; c++)
          for (int ky = 0; ky < P; ky++)
            for (int kx = 0; kx < P; kx++) {
              int y = (p / gw) * P + ky, x = (p % gw) * P + kx;
              double want = (img[(((size_t)b * H + y) * W + x) * C + c] / 255.0 - mean[c]) / sd[c];
              float got = out[((size_t)b * nP + p) * K + c * P * P + ky * P + kx];
              if (fabs(got - want) > 1e-5) fail_msg("patchify b%d p%d c%d: %g want %g", b, p, c, got, want);
            }
    free(img); free(out);
  }
}

static void test_vit_tokens(void **state) {
  (void)state;
  tu_seed(20);
  int B = 3, nP = 5, D = 7, T = nP + 1;
  float *patch = tu_rand((size_t)B * nP * D, -1, 1), *cls = tu_rand(D, -1, 1), *pos = tu_rand((size_t)T * D, -1, 1);
  float *x = malloc((size_t)B * T * D * 4), *dx = tu_rand((size_t)B * T * D, -1, 1);
  be->vit_tokens_fwd(patch, cls, pos, x, B, nP, D);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int d = 0; d < D; d++) {
        float want = (t == 0 ? cls[d] : patch[((size_t)b * nP + t - 1) * D + d]) + pos[t * D + d];
        assert_true(x[((size_t)b * T + t) * D + d] == want);
      }
  float *dpatch = tu_rand((size_t)B * nP * D, -1, 1), *dcls = tu_rand(D, -1, 1), *dpos = tu_rand((size_t)T * D, -1, 1);
  double *rcls = malloc(D * 8), *rpos = malloc((size_t)T * D * 8);
  for (int d = 0; d < D; d++) rcls[d] = dcls[d];
  for (int i = 0; i < T * D; i++) rpos[i] = dpos[i];
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int d = 0; d < D; d++) {
        rpos[t * D + d] += dx[((size_t)b * T + t) * D + d];
        if (t == 0) rcls[d] += dx[((size_t)b * T) * D + d];
      }
  be->vit_tokens_bwd(dx, dpatch, dcls, dpos, B, nP, D);
  tu_close("dcls", dcls, rcls, D, 1e-6, 1e-6);
  tu_close("dpos", dpos, rpos, (size_t)T * D, 1e-6, 1e-6);
  for (int b = 0; b < B; b++)
    for (int p = 0; p < nP; p++)
      assert_memory_equal(dpatch + ((size_t)b * nP + p) * D, dx + ((size_t)b * T + 1 + p) * D, D * 4);
  free(patch); free(cls); free(pos); free(x); free(dx); free(dpatch); free(dcls); free(dpos);
  free(rcls); free(rpos);
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_dot_interact), cmocka_unit_test(test_patchify),
                                     cmocka_unit_test(test_vit_tokens)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* gemm (all transposes, alpha/beta, strides, bias, activations, pre_act,
 * residual, fp16/bf16 inputs), bias_grad, act_fwd/act_bwd, act_bias_bwd. */
#include "test_util.h"

static const cddp_backend *be;

/* Stores a float matrix as type t (row stride ld) and returns what the
 * backend will see, as doubles in a [rows, ld] array. */
static void *store(cddp_dtype t, const float *x, size_t n, double *seen) {
  size_t es = cddp_dtype_size(t);
  void *p = malloc(n * es);
  for (size_t i = 0; i < n; i++) {
    if (t == CDDP_F32) {
      ((float *)p)[i] = x[i];
      seen[i] = x[i];
    } else if (t == CDDP_F16) {
      ((uint16_t *)p)[i] = cddp_f32_to_f16(x[i]);
      seen[i] = cddp_f16_to_f32(((uint16_t *)p)[i]);
    } else {
      ((uint16_t *)p)[i] = cddp_f32_to_bf16(x[i]);
      seen[i] = cddp_bf16_to_f32(((uint16_t *)p)[i]);
    }
  }
  return p;
}

static void run_case(int ta, int tb, int m, int n, int k, float alpha, float beta, cddp_dtype t,
                     int with_bias, cddp_act act, int with_pre, int with_res) {
  /* with_res: 1 a residual buffer, 2 the residual is C itself (beta must be 0) */
  int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
  size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
  float *af = tu_rand(na, -1, 1), *bf = tu_rand(nb, -1, 1), *C = tu_rand(nc, -1, 1);
  float *bias = with_bias ? tu_rand(n, -0.5f, 0.5f) : NULL;
  float *pre = with_pre ? tu_rand((size_t)m * n, -1, 1) : NULL;
  float *res = with_res == 1 ? tu_rand(nc, -1, 1) : with_res == 2 ? C : NULL;
  double *as = malloc(na * sizeof(double)), *bs = malloc(nb * sizeof(double));
  void *A = store(t, af, na, as), *Bm = store(t, bf, nb, bs);
  double *ref = malloc(nc * sizeof(double)), *refpre = malloc((size_t)m * n * sizeof(double));
  double *mag = malloc(nc * sizeof(double));
  for (size_t i = 0; i < nc; i++) ref[i] = C[i], mag[i] = 0;
  if (res) beta = 0.0f;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0, sa = 0;
      for (int p = 0; p < k; p++) {
        double a = ta ? as[(size_t)p * lda + i] : as[(size_t)i * lda + p];
        double b = tb ? bs[(size_t)j * ldb + p] : bs[(size_t)p * ldb + j];
        s += a * b;
        sa += fabs(a * b);
      }
      size_t c = (size_t)i * ldc + j;
      double v = alpha * s + (beta != 0 ? beta * ref[c] : 0) + (bias ? bias[j] : 0) +
                 (res ? (double)res[c] : 0);
      refpre[(size_t)i * n + j] = v;
      mag[c] = sa + 1;
      ref[c] = act == CDDP_ACT_RELU ? (v > 0 ? v : 0) : act == CDDP_ACT_GELU ? tu_gelu(v) : v;
    }
  cddp_gemm_args g = {.transa = ta, .transb = tb, .m = m, .n = n, .k = k, .alpha = alpha,
                      .beta = beta, .ab_type = t, .A = A, .lda = lda, .B = Bm, .ldb = ldb,
                      .C = C, .ldc = ldc, .bias = bias, .act = act, .pre_act = pre,
                      .residual = res};
  be->gemm(&g);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < ldc; j++) {
      size_t c = (size_t)i * ldc + j;
      double tol = 2e-6 * mag[c];
      if (fabs(C[c] - ref[c]) > tol)
        fail_msg("gemm ta=%d tb=%d %s act=%d bias=%d res=%d: C[%d,%d] = %.8g, want %.8g", ta, tb,
                 cddp_dtype_name(t), act, with_bias, with_res, i, j, C[c], ref[c]);
      if (pre && j < n && fabs(pre[(size_t)i * n + j] - refpre[(size_t)i * n + j]) > tol)
        fail_msg("gemm pre_act[%d,%d] = %.8g, want %.8g", i, j, pre[(size_t)i * n + j],
                 refpre[(size_t)i * n + j]);
    }
  if (with_res == 1) free(res);
  free(af); free(bf); free(C); free(bias); free(pre); free(as); free(bs); free(A); free(Bm);
  free(ref); free(refpre); free(mag);
}

static void test_gemm_combinations(void **state) {
  (void)state;
  cddp_dtype types[] = {CDDP_F32, CDDP_F16, CDDP_BF16};
  int seed = 11;
  for (int ti = 0; ti < 3; ti++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int act = 0; act < 3; act++) {
          tu_seed(seed++);
          run_case(ta, tb, 13, 17, 9, 0.7f, 0.0f, types[ti], 0, (cddp_act)act, 0, 0);
          run_case(ta, tb, 5, 33, 20, 1.3f, 0.4f, types[ti], 1, (cddp_act)act, 1, 0);
          run_case(ta, tb, 1, 1, 31, -0.5f, 1.0f, types[ti], 1, (cddp_act)act, 1, 0);
          run_case(ta, tb, 6, 19, 11, 0.9f, 0.0f, types[ti], 1, (cddp_act)act, 1, 0);
          run_case(ta, tb, 7, 18, 12, 1.1f, 0.0f, types[ti], act & 1, (cddp_act)act, act == 2, 1);
          run_case(ta, tb, 9, 16, 10, 0.6f, 0.0f, types[ti], 1, (cddp_act)act, 0, 2);
        }
}

/* large enough for the parallel epilogue and OpenBLAS threads */
static void test_gemm_large_threads(void **state) {
  (void)state;
  tu_seed(99);
  be->set_threads(2);
  run_case(0, 1, 130, 150, 70, 1.0f, 0.0f, CDDP_F32, 1, CDDP_ACT_GELU, 1, 0);
  run_case(1, 0, 96, 200, 64, 0.5f, 0.5f, CDDP_BF16, 1, CDDP_ACT_RELU, 1, 0);
  run_case(0, 0, 200, 96, 48, 1.0f, 0.0f, CDDP_F16, 0, CDDP_ACT_NONE, 0, 0);
  run_case(0, 1, 220, 96, 40, 1.0f, 0.0f, CDDP_F32, 1, CDDP_ACT_NONE, 0, 1);
  be->set_threads(1);
}

static void test_gemm_k0(void **state) {
  (void)state;
  float C[6] = {1, 2, 3, 4, 5, 6}, bias[3] = {1, 1, 1}, A[1], B[1];
  cddp_gemm_args g = {.m = 2, .n = 3, .k = 0, .alpha = 1, .beta = 0.5f, .ab_type = CDDP_F32,
                      .A = A, .lda = 1, .B = B, .ldb = 3, .C = C, .ldc = 3, .bias = bias};
  be->gemm(&g);
  for (int i = 0; i < 6; i++) assert_true(fabsf(C[i] - (0.5f * (i + 1) + 1)) < 1e-6f);
}

static void test_bias_grad(void **state) {
  (void)state;
  int shapes[][2] = {{7, 5}, {64, 300}, {300, 700}};
  be->set_threads(2);
  for (int s = 0; s < 3; s++) {
    tu_seed(200 + s);
    int m = shapes[s][0], n = shapes[s][1], ld = n + 3;
    float *dy = tu_rand((size_t)m * ld, -1, 1), *db = tu_rand(n, -1, 1);
    double *ref = malloc(n * sizeof(double));
    for (int j = 0; j < n; j++) {
      ref[j] = db[j];
      for (int i = 0; i < m; i++) ref[j] += dy[(size_t)i * ld + j];
    }
    be->bias_grad(dy, m, n, ld, db);
    tu_close("bias_grad", db, ref, n, 1e-5 * m, 0);
    free(dy); free(db); free(ref);
  }
  be->set_threads(1);
}

static void test_act_fwd_values(void **state) {
  (void)state;
  tu_seed(300);
  size_t n = 40000; /* above the parallel threshold */
  float *x = tu_rand(n, -9, 9), *y = malloc(n * sizeof(float));
  x[0] = 0; x[1] = -0.0f; x[2] = 1; x[3] = -1; x[4] = 30; x[5] = -30; x[6] = 1e-6f;
  double *ref = malloc(n * sizeof(double));
  be->set_threads(2);
  for (size_t i = 0; i < n; i++) ref[i] = tu_gelu(x[i]);
  be->act_fwd(CDDP_ACT_GELU, x, y, n);
  tu_close("gelu", y, ref, n, 1e-7, 2e-6);
  /* PyTorch gelu(1.0, approximate='tanh') */
  assert_true(fabs(y[2] - 0.8411920070648193) < 1e-6);
  for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0 ? x[i] : 0;
  be->act_fwd(CDDP_ACT_RELU, x, y, n);
  tu_close("relu", y, ref, n, 0, 0);
  be->act_fwd(CDDP_ACT_NONE, x, y, n);
  tu_close_ff("identity", y, x, n, 0, 0);
  be->set_threads(1);
  free(x); free(y); free(ref);
}

typedef struct { cddp_act act; float *x, *y, *dy; size_t n; } act_ctx;
static double act_obj(void *p) {
  act_ctx *c = p;
  be->act_fwd(c->act, c->x, c->y, c->n);
  return tu_dot(c->dy, c->y, c->n);
}

static void test_act_bwd(void **state) {
  (void)state;
  for (int a = 1; a <= 2; a++) {
    tu_seed(400 + a);
    size_t n = 257;
    float *x = tu_rand(n, -4, 4), *dy = tu_rand(n, -1, 1), *y = malloc(n * 4), *dx = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
      if (fabsf(x[i]) < 0.02f) x[i] = 0.5f; /* keep ReLU's kink out of the differences */
    be->act_bwd((cddp_act)a, x, dy, dx, n);
    /* analytic double reference */
    for (size_t i = 0; i < n; i++) {
      double xi = x[i], want;
      if (a == CDDP_ACT_RELU) {
        want = xi > 0 ? dy[i] : 0;
      } else {
        double k = sqrt(2 / M_PI), u = k * (xi + 0.044715 * xi * xi * xi), th = tanh(u);
        want = dy[i] * (0.5 * (1 + th) + 0.5 * xi * (1 - th * th) * k * (1 + 3 * 0.044715 * xi * xi));
      }
      if (fabs(dx[i] - want) > 1e-6 + 1e-5 * fabs(want))
        fail_msg("act_bwd(%d)[%zu] at x=%g: %.8g want %.8g", a, i, x[i], dx[i], want);
    }
    act_ctx c = {(cddp_act)a, x, y, dy, n};
    tu_fd("act_bwd", x, n, dx, act_obj, &c, 1e-2f, 2e-3, 1);
    free(x); free(dy); free(y); free(dx);
  }
}

/* the fused pass gives the bits of act_bwd followed by bias_grad, on every
 * path (single pass over column blocks, or two passes with more threads) */
static void test_act_bias_bwd(void **state) {
  (void)state;
  int shapes[][2] = {{7, 5}, {64, 300}, {300, 700}, {2048, 96}};
  for (int threads = 1; threads <= 2; threads++) {
    be->set_threads(threads);
    for (int a = 0; a <= 2; a++)
      for (int s = 0; s < 4; s++) {
        tu_seed(500 + 10 * a + s);
        int m = shapes[s][0], n = shapes[s][1];
        size_t mn = (size_t)m * n;
        float *pre = tu_rand(mn, -3, 3), *dy = tu_rand(mn, -1, 1), *db0 = tu_rand(n, -1, 1);
        float *dx1 = malloc(mn * 4), *dx2 = malloc(mn * 4), *db1 = malloc(n * 4), *db2 = malloc(n * 4);
        memcpy(db1, db0, n * 4);
        memcpy(db2, db0, n * 4);
        be->act_bwd((cddp_act)a, pre, dy, dx1, mn);
        be->bias_grad(dx1, m, n, n, db1);
        be->act_bias_bwd((cddp_act)a, pre, dy, dx2, m, n, db2);
        assert_memory_equal(dx1, dx2, mn * 4);
        assert_memory_equal(db1, db2, n * 4);
        be->act_bias_bwd((cddp_act)a, pre, dy, dx2, m, n, NULL); /* no bias */
        assert_memory_equal(dx1, dx2, mn * 4);
        free(pre); free(dy); free(db0); free(dx1); free(dx2); free(db1); free(db2);
      }
  }
  be->set_threads(1);
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm_combinations), cmocka_unit_test(test_gemm_large_threads),
      cmocka_unit_test(test_gemm_k0),           cmocka_unit_test(test_bias_grad),
      cmocka_unit_test(test_act_fwd_values),    cmocka_unit_test(test_act_bwd),
      cmocka_unit_test(test_act_bias_bwd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

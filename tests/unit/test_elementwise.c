/* fill, scale, axpy, add (aliasing), scale_rows and copy2d with strides, cast (bit-exact
 * against core/dtype.c, special values included). */
#include "test_util.h"

static const cddp_backend *be;

static void test_basic_ops(void **state) {
  (void)state;
  be->set_threads(2);
  size_t sizes[] = {1, 17, 100003};
  for (int s = 0; s < 3; s++) {
    tu_seed(10 + s);
    size_t n = sizes[s];
    float *x = tu_rand(n, -2, 2), *y = tu_rand(n, -2, 2), *o = malloc(n * 4);
    double *ref = malloc(n * sizeof(double));
    be->fill(o, n, 0.25f);
    for (size_t i = 0; i < n; i++) ref[i] = 0.25;
    tu_close("fill", o, ref, n, 0, 0);
    float *x2 = tu_copy(x, n);
    be->scale(x2, n, -1.5f);
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] * -1.5;
    tu_close("scale", x2, ref, n, 0, 1e-7);
    float *y2 = tu_copy(y, n);
    be->axpy(y2, x, n, 0.3f);
    for (size_t i = 0; i < n; i++) ref[i] = y[i] + 0.3 * x[i];
    tu_close("axpy", y2, ref, n, 1e-6, 1e-6);
    be->add(o, x, y, n);
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] + y[i];
    tu_close("add", o, ref, n, 1e-6, 1e-7);
    memcpy(y2, y, n * 4);
    be->add(y2, x, y2, n); /* aliased output */
    tu_close("add aliased", y2, ref, n, 1e-6, 1e-7);
    free(x); free(y); free(o); free(x2); free(y2); free(ref);
  }
  be->set_threads(1);
}

static void test_copy2d(void **state) {
  (void)state;
  tu_seed(20);
  int rows = 37, cols = 11, lds = 19, ldd = 13;
  float *src = tu_rand((size_t)rows * lds, -1, 1), *dst = tu_rand((size_t)rows * ldd, -1, 1);
  float *orig = tu_copy(dst, (size_t)rows * ldd);
  be->copy2d(dst, ldd, src, lds, rows, cols);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < ldd; c++) {
      float want = c < cols ? src[r * lds + c] : orig[r * ldd + c];
      assert_true(dst[r * ldd + c] == want);
    }
  /* contiguous fast path */
  be->copy2d(dst, cols, src, cols, rows, cols);
  assert_memory_equal(dst, src, (size_t)rows * cols * 4);
  free(src); free(dst); free(orig);
}

static void test_scale_rows(void **state) {
  (void)state;
  tu_seed(21);
  int rows = 29, cols = 6, ld = 9;
  float *x = tu_rand((size_t)rows * ld, -1, 1), *orig = tu_copy(x, (size_t)rows * ld);
  float *f = tu_rand(rows, -2, 2);
  f[3] = 1.0f, f[4] = 0.0f;
  be->scale_rows(x, ld, rows, cols, f);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < ld; c++) /* one rounding each, columns past cols untouched */
      assert_true(x[r * ld + c] == (c < cols ? orig[r * ld + c] * f[r] : orig[r * ld + c]));
  be->scale_rows(x, ld, 0, cols, f); /* no rows: nothing read */
  free(x); free(orig); free(f);
}

static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void test_cast_exact(void **state) {
  (void)state;
  tu_seed(30);
  size_t n = 70001;
  float *x = malloc(n * 4);
  for (size_t i = 0; i < n; i++) {
    switch (i % 4) {
      case 0: x[i] = u2f((uint32_t)tu_next()); break; /* any bits: NaN, inf, subnormal */
      case 1: x[i] = tu_f(-70000, 70000); break;
      case 2: x[i] = tu_f(-1, 1) * 1e-5f; break; /* fp16 subnormal range */
      default: x[i] = tu_f(-4, 4); break;
    }
  }
  float specials[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65520.0f, 65519.99f, 1e30f, -1e30f,
                      5.9604645e-8f, 2.9802322e-8f, u2f(0x7f800000), u2f(0xff800000),
                      u2f(0x7fc00001), u2f(0xffa00000), 3.3895314e38f};
  memcpy(x, specials, sizeof specials);
  uint16_t *h = malloc(n * 2), *h2 = malloc(n * 2);
  float *back = malloc(n * 4);
  be->set_threads(2);
  for (int t = CDDP_F16; t <= CDDP_BF16; t++) {
    be->cast(h, (cddp_dtype)t, x, CDDP_F32, n);
    for (size_t i = 0; i < n; i++) {
      uint16_t want = t == CDDP_F16 ? cddp_f32_to_f16(x[i]) : cddp_f32_to_bf16(x[i]);
      if (h[i] != want) fail_msg("cast f32->%s of %a: %04x want %04x", cddp_dtype_name(t), x[i], h[i], want);
    }
    be->cast(back, CDDP_F32, h, (cddp_dtype)t, n);
    for (size_t i = 0; i < n; i++) {
      float want = t == CDDP_F16 ? cddp_f16_to_f32(h[i]) : cddp_bf16_to_f32(h[i]);
      if (memcmp(&back[i], &want, 4) != 0) fail_msg("cast %s->f32 of %04x", cddp_dtype_name(t), h[i]);
    }
  }
  /* half -> half goes through fp32 */
  be->cast(h, CDDP_F16, x, CDDP_F32, n);
  be->cast(h2, CDDP_BF16, h, CDDP_F16, n);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(h2[i], cddp_f32_to_bf16(cddp_f16_to_f32(h[i])));
  /* same type: a copy */
  be->cast(back, CDDP_F32, x, CDDP_F32, n);
  assert_memory_equal(back, x, n * 4);
  be->set_threads(1);
  free(x); free(h); free(h2); free(back);
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_basic_ops), cmocka_unit_test(test_copy2d),
                                     cmocka_unit_test(test_scale_rows),
                                     cmocka_unit_test(test_cast_exact)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

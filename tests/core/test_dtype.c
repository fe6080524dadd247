/* fp16/bf16 conversions against known bit patterns. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/dtype.h"

static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static void test_f16_known(void **state) {
  (void)state;
  assert_int_equal(cddp_f32_to_f16(1.0f), 0x3c00);
  assert_int_equal(cddp_f32_to_f16(-2.5f), 0xc100);
  assert_int_equal(cddp_f32_to_f16(0.0f), 0x0000);
  assert_int_equal(cddp_f32_to_f16(-0.0f), 0x8000);
  assert_int_equal(cddp_f32_to_f16(65504.0f), 0x7bff);      /* largest finite */
  assert_int_equal(cddp_f32_to_f16(65519.99f), 0x7bff);     /* just below the tie */
  assert_int_equal(cddp_f32_to_f16(65520.0f), 0x7c00);      /* tie rounds to inf */
  assert_int_equal(cddp_f32_to_f16(1e10f), 0x7c00);         /* overflow */
  assert_int_equal(cddp_f32_to_f16(-1e10f), 0xfc00);
  assert_int_equal(cddp_f32_to_f16(u2f(0x7f800000)), 0x7c00);
  assert_int_equal(cddp_f32_to_f16(ldexpf(1, -24)), 0x0001); /* smallest subnormal */
  assert_int_equal(cddp_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie to even: 0 */
  assert_int_equal(cddp_f32_to_f16(ldexpf(3, -25)), 0x0002); /* 1.5 * 2^-24: tie to even 2 */
  assert_int_equal(cddp_f32_to_f16(ldexpf(1.0001f, -25)), 0x0001); /* above the tie */
  assert_int_equal(cddp_f32_to_f16(ldexpf(1, -14)), 0x0400); /* smallest normal */
  assert_int_equal(cddp_f32_to_f16(ldexpf(1023, -24)), 0x03ff); /* largest subnormal */
  /* RNE ties in the normal range: 1 + 2^-11 is halfway between 1 and 1+2^-10 */
  assert_int_equal(cddp_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
  assert_int_equal(cddp_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
  /* NaN stays NaN (quiet), sign kept */
  uint16_t h = cddp_f32_to_f16(u2f(0x7fc00000));
  assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
  h = cddp_f32_to_f16(u2f(0xff800001)); /* signalling NaN with a low payload */
  assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0 && (h & 0x8000));
  /* back to fp32 */
  assert_true(cddp_f16_to_f32(0x3c00) == 1.0f);
  assert_true(cddp_f16_to_f32(0xc100) == -2.5f);
  assert_true(cddp_f16_to_f32(0x7bff) == 65504.0f);
  assert_true(cddp_f16_to_f32(0x0001) == ldexpf(1, -24));
  assert_true(cddp_f16_to_f32(0x03ff) == ldexpf(1023, -24));
  assert_true(isinf(cddp_f16_to_f32(0x7c00)) && cddp_f16_to_f32(0xfc00) < 0);
  assert_true(isnan(cddp_f16_to_f32(0x7e00)));
  assert_int_equal(f2u(cddp_f16_to_f32(0x8000)), 0x80000000u);
}

static void test_f16_roundtrip_all(void **state) {
  (void)state;
  /* every non-NaN half survives half -> float -> half */
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
    assert_int_equal(cddp_f32_to_f16(cddp_f16_to_f32((uint16_t)h)), h);
  }
}

static void test_bf16_known(void **state) {
  (void)state;
  assert_int_equal(cddp_f32_to_bf16(1.0f), 0x3f80);
  assert_int_equal(cddp_f32_to_bf16(-2.5f), 0xc020);
  assert_int_equal(cddp_f32_to_bf16(u2f(0x3f808000)), 0x3f80); /* tie, even stays */
  assert_int_equal(cddp_f32_to_bf16(u2f(0x3f818000)), 0x3f82); /* tie, odd rounds up */
  assert_int_equal(cddp_f32_to_bf16(u2f(0x3f808001)), 0x3f81); /* above the tie */
  assert_int_equal(cddp_f32_to_bf16(u2f(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
  assert_int_equal(cddp_f32_to_bf16(u2f(0x7f800000)), 0x7f80);
  assert_int_equal(cddp_f32_to_bf16(u2f(0x00000001)), 0x0000); /* tiny subnormal */
  assert_int_equal(cddp_f32_to_bf16(u2f(0x00010000)), 0x0001); /* bf16 subnormal kept */
  uint16_t h = cddp_f32_to_bf16(u2f(0x7f800001)); /* NaN whose payload is below bit 16 */
  assert_true((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0);
  assert_true(cddp_bf16_to_f32(0x3f80) == 1.0f);
  assert_true(isnan(cddp_bf16_to_f32(0x7fc0)));
  for (uint32_t v = 0; v < 0x10000; v++) {
    if ((v & 0x7f80) == 0x7f80 && (v & 0x7f)) continue;
    assert_int_equal(cddp_f32_to_bf16(cddp_bf16_to_f32((uint16_t)v)), v);
  }
}

static void test_round_to_and_names(void **state) {
  (void)state;
  assert_true(cddp_round_to(CDDP_F16, 1.0f + ldexpf(1, -12)) == 1.0f);
  assert_true(cddp_round_to(CDDP_BF16, 1.001f) == 1.0f);
  assert_true(cddp_round_to(CDDP_F32, 1.001f) == 1.001f);
  assert_int_equal(cddp_dtype_size(CDDP_F16), 2);
  assert_int_equal(cddp_dtype_size(CDDP_I64), 8);
  assert_int_equal(cddp_dtype_parse("bf16"), CDDP_BF16);
  assert_int_equal(cddp_dtype_parse("fp16"), CDDP_F16);
  assert_int_equal(cddp_dtype_parse("f32"), CDDP_F32);
  assert_int_equal(cddp_dtype_parse("int8"), -1);
  assert_string_equal(cddp_dtype_name(CDDP_BF16), "bf16");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_f16_known), cmocka_unit_test(test_f16_roundtrip_all),
                                     cmocka_unit_test(test_bf16_known), cmocka_unit_test(test_round_to_and_names)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

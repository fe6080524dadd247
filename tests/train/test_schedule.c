/* LR schedules: warm-up, cosine to min-lr, step decay, constant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>

#include "train/schedule.h"

static void test_constant_warmup(void **s) {
  (void)s;
  cddp_schedule sc;
  cddp_schedule_init(&sc, "constant", 4, 100, 10, 0.1, 0.1, 0);
  assert_true(fabs(cddp_schedule_factor(&sc, 0) - 0.25) < 1e-12);
  assert_true(fabs(cddp_schedule_factor(&sc, 3) - 1.0) < 1e-12);
  assert_true(fabs(cddp_schedule_factor(&sc, 50) - 1.0) < 1e-12);
}

static void test_cosine(void **s) {
  (void)s;
  cddp_schedule sc;
  cddp_schedule_init(&sc, "cosine", 10, 110, 1, 0.1, 0.2, 0.02); /* floor 0.1 */
  assert_true(fabs(cddp_schedule_factor(&sc, 10) - 1.0) < 1e-12);
  assert_true(fabs(cddp_schedule_factor(&sc, 60) - 0.55) < 1e-12); /* halfway */
  assert_true(fabs(cddp_schedule_factor(&sc, 110) - 0.1) < 1e-12);
  assert_true(fabs(cddp_schedule_factor(&sc, 500) - 0.1) < 1e-12);
  double prev = 2;
  for (int t = 10; t <= 110; t++) { /* monotone after warm-up */
    double f = cddp_schedule_factor(&sc, t);
    assert_true(f <= prev + 1e-15);
    prev = f;
  }
}

static void test_step(void **s) {
  (void)s;
  cddp_schedule sc;
  cddp_schedule_init(&sc, "step", 0, 1000, 30, 0.5, 1, 0);
  assert_true(fabs(cddp_schedule_factor(&sc, 29) - 1.0) < 1e-12);
  assert_true(fabs(cddp_schedule_factor(&sc, 30) - 0.5) < 1e-12);
  assert_true(fabs(cddp_schedule_factor(&sc, 95) - 0.125) < 1e-12);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_constant_warmup), cmocka_unit_test(test_cosine),
                                 cmocka_unit_test(test_step)};
  return cmocka_run_group_tests(t, NULL, NULL);
}

/* Fixed-seed training of each tiny model with plain SGD on a small synthetic
 * batch stream: the loss goes down, and two runs give bit-identical losses
 * (also with a different thread count: nothing depends on it). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"
#include "model_fixture.h"

#define MAXSTEPS 160
#define NBATCH 4
#define B 16

static void train(const char *arch, float lr, int steps, int threads, double *losses) {
  fx_batch fb[NBATCH];
  for (int i = 0; i < NBATCH; i++) fx_batch_make(&fb[i], arch, B, 1000 + i);
  cddp_model *m = fx_model(arch, B, 77, 10, CDDP_F32);
  m->be->set_threads(threads);
  for (int s = 0; s < steps; s++) {
    const cddp_batch *b = &fb[s % NBATCH].b;
    fx_zero_grads(m);
    losses[s] = fx_forward(m, b, 1);
    m->ops->backward(m, b, NULL);
    fx_sgd(m, lr);
  }
  m->be->set_threads(1);
  cddp_model_destroy(m);
  for (int i = 0; i < NBATCH; i++) fx_batch_free(&fb[i]);
}

static void run(const char *arch, float lr, int steps) {
  double a[MAXSTEPS], b[MAXSTEPS], c[MAXSTEPS];
  train(arch, lr, steps, 1, a);
  train(arch, lr, steps, 1, b);
  train(arch, lr, steps, 2, c);
  assert_memory_equal(a, b, steps * sizeof(double));
  double first = 0, last = 0;
  for (int i = 0; i < NBATCH; i++) {
    first += a[i];
    last += a[steps - NBATCH + i];
  }
  fprintf(stderr, "%s: mean loss of the first pass %.4f, of the last %.4f\n", arch,
          first / NBATCH, last / NBATCH);
  assert_true(last < 0.8 * first);
  /* threads change OpenBLAS/OpenMP blocking, not the result beyond rounding */
  for (int i = 0; i < steps; i++) assert_true(fabs(a[i] - c[i]) <= 1e-4 * fabs(a[i]) + 1e-6);
}

static void test_dlrm(void **s) { run("dlrm", 0.5f, 48); }
static void test_two_tower(void **s) { run("two_tower", 0.5f, 48); }
static void test_vit(void **s) { run("vit", 0.3f, 160); }

int main(void) {
  cddp_log_set_quiet(1);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_dlrm), cmocka_unit_test(test_two_tower),
                                     cmocka_unit_test(test_vit)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The CPU backend table: every entry filled, memory, streams, events, the
 * vectorised exp used by softmax/GELU/xent. */
#include <stddef.h>
#include <time.h>

#include "test_util.h"
#include "kernels/cpu/cpu_internal.h"

static const cddp_backend *be;

static void test_table_complete(void **state) {
  (void)state;
  assert_string_equal(be->name, "cpu");
  assert_int_equal(be->is_device, 0);
  assert_non_null(be->compute);
  assert_non_null(be->copy);
  assert_non_null(be->comm);
  assert_true(be->compute != be->copy && be->copy != be->comm && be->compute != be->comm);
  const char *missing = cddp_backend_missing_op(be);
  if (missing) fail_msg("the CPU table has no %s", missing);
  /* the check sees a hole anywhere in the list, first and last op included */
  cddp_backend t = *be;
  t.sparse_adagrad = NULL;
  assert_string_equal(cddp_backend_missing_op(&t), "sparse_adagrad");
  t.malloc = NULL;
  assert_string_equal(cddp_backend_missing_op(&t), "malloc");
  t = *be;
  t.attention_fwd = NULL;
  assert_string_equal(cddp_backend_missing_op(&t), "attention_fwd");
}

static void test_memory(void **state) {
  (void)state;
  size_t n = 1000;
  float *d = be->malloc(n * 4), *h = be->host_alloc(n * 4), *d2 = be->malloc(n * 4);
  assert_true(((uintptr_t)d & 255) == 0);
  for (size_t i = 0; i < n; i++) h[i] = (float)i * 0.5f;
  be->memcpy_h2d(d, h, n * 4, be->copy);
  be->memcpy_d2d(d2, d, n * 4, be->compute);
  be->memset0(d, n * 4, be->compute);
  be->memcpy_d2h(h, d2, n * 4, be->compute);
  be->stream_sync(be->compute);
  for (size_t i = 0; i < n; i++) assert_true(h[i] == (float)i * 0.5f && d[i] == 0.0f);
  be->free(d); be->free(d2); be->host_free(h);
  void *z = be->malloc(0);
  assert_non_null(z);
  be->free(z);
}

static void test_events(void **state) {
  (void)state;
  cddp_event *a = be->event_create(), *b = be->event_create();
  be->event_record(a, be->compute);
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  be->event_record(b, be->compute);
  be->stream_wait_event(be->comm, b);
  be->event_sync(b);
  float ms = be->event_elapsed_ms(a, b);
  assert_true(ms >= 19.0f && ms < 2000.0f);
  be->event_destroy(a);
  be->event_destroy(b);
}

static void test_expf(void **state) {
  (void)state;
  tu_seed(5);
  float xs[20001];
  for (int i = 0; i < 20001; i++) xs[i] = -87.0f + 175.0f * i / 20000.0f;
  for (int i = 0; i < 20001; i++) {
    double want = exp((double)xs[i]);
    double got = cpu_expf(xs[i]);
    if (fabs(got - want) > 4e-7 * want) fail_msg("exp(%g) = %g want %g", xs[i], got, want);
  }
  assert_true(cpu_expf(-100.0f) >= 0.0f && cpu_expf(-100.0f) < 1e-42f);
  assert_true(cpu_expf(-200.0f) == 0.0f && cpu_expf(-INFINITY) == 0.0f);
  assert_true(isinf(cpu_expf(INFINITY)) && isinf(cpu_expf(88.8f)));
  assert_true(fabs(cpu_expf(88.7f) - exp((double)88.7f)) < 4e-7 * exp((double)88.7f));
  assert_true(isinf(cpu_expf(100.0f)));
  assert_true(isnan(cpu_expf(NAN)));
  assert_true(cpu_expf(0.0f) == 1.0f);
}

static void test_threads_and_shutdown(void **state) {
  (void)state;
  be->set_threads(2);
  assert_int_equal(cpu_max_threads(), 2);
  be->set_threads(0); /* clamped to 1 */
  assert_int_equal(cpu_max_threads(), 1);
  void *p = cpu_scratch(CPU_SCRATCH_A, 1000);
  assert_non_null(p);
  assert_ptr_equal(cpu_scratch(CPU_SCRATCH_A, 500), p); /* no regrowth */
  be->shutdown();
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table_complete), cmocka_unit_test(test_memory),
      cmocka_unit_test(test_events), cmocka_unit_test(test_expf),
      cmocka_unit_test(test_threads_and_shutdown)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

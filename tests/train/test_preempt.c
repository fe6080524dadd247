/* The stop-signal handler: the first signal is recorded (the loop stops at a
 * step boundary), a duplicate within CDDP_PREEMPT_REPEAT_S is the same
 * request, a later second signal ends the process at once with 128 + signal. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "train/preempt.h"
#include "train_child.h"

static void signals_twice(void *arg) {
  (void)arg;
  cddp_preempt_install(3);
  raise(SIGUSR1);
  if (cddp_preempt_signal() != SIGUSR1) _exit(10);
  raise(SIGTERM); /* within the repeat window: the same request */
  if (cddp_preempt_signal() != SIGUSR1) _exit(11);
  struct timespec nap = {1, 200000000}; /* past CDDP_PREEMPT_REPEAT_S */
  nanosleep(&nap, NULL);
  raise(SIGTERM); /* ends the process */
  _exit(12);
}

static void uninstalled(void *arg) {
  (void)arg;
  cddp_preempt_install(0);
  cddp_preempt_uninstall();
  raise(SIGTERM); /* default action again */
  _exit(13);
}

static void test_second_signal_stops_at_once(void **s) {
  (void)s;
  char err[2048];
  assert_int_equal(run_child(signals_twice, NULL, err, sizeof err), 128 + SIGTERM);
  assert_non_null(strstr(err, "cddp: rank 3: SIGUSR1: stopping at the next step boundary"));
  assert_non_null(strstr(err, "cddp: rank 3: SIGTERM again: stopping now, without a checkpoint"));
  assert_int_equal(run_child(uninstalled, NULL, err, sizeof err), 128 + SIGTERM);
  assert_int_equal(strlen(err), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_second_signal_stops_at_once)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

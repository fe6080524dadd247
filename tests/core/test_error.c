/* The error path: a failing checked call or cddp_die in a child process
 * prints "cddp: rank R: file:line: message" and exits with the given code;
 * the abort hook runs with that code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"

/* Runs fn in a child with stderr captured; returns the exit status. */
static int run_child(void (*fn)(void), char *out, size_t cap) {
  int fd[2];
  assert_int_equal(pipe(fd), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], 2);
    fn();
    _exit(0);
  }
  close(fd[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(fd[0], out + n, cap - 1 - n)) > 0) n += (size_t)r;
  out[n] = 0;
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static int g_line;

static void failing_sys_call(void) {
  cddp_set_rank(3);
  g_line = __LINE__ + 1;
  CDDP_CHECK_SYS(close(-1));
}

static void die_data(void) {
  cddp_set_rank(0);
  g_line = __LINE__ + 1;
  cddp_die(CDDP_EXIT_DATA, "bad label %d in row %d", 7, 42);
}

static void die_control_bytes(void) {
  cddp_set_rank(0);
  cddp_die(CDDP_EXIT_DATA, "bad label '%s'", "a\rb\x1b[2Jc");
}

static void die_no_rank(void) {
  cddp_set_rank(-1);
  cddp_set_usage_hint("'cddp x --help'");
  cddp_die(CDDP_EXIT_USAGE, "unknown flag --foo");
}

static void hook(int code) {
  fprintf(stderr, "hook called with %d\n", code);
  fflush(stderr);
  _exit(100 + code);
}
static void die_with_hook(void) {
  cddp_set_rank(1);
  cddp_set_abort_hook(hook);
  cddp_die(CDDP_EXIT_DIVERGED, "loss is NaN");
}

static void expect_location(const char *msg, const char *prefix) {
  char want[256];
  /* g_line was set in the child; the parent computes the same line number */
  snprintf(want, sizeof want, "%s%s:%d: ", prefix, __FILE__, g_line);
  if (!strstr(msg, want)) fail_msg("message \"%s\" lacks \"%s\"", msg, want);
}

static void test_checked_call(void **state) {
  (void)state;
  char msg[2048];
  int code = run_child(failing_sys_call, msg, sizeof msg);
  assert_int_equal(code, CDDP_EXIT_RUNTIME);
  g_line = 0;
  /* recompute the line the child recorded: find it from the message */
  const char *p = strstr(msg, __FILE__ ":");
  assert_non_null(p);
  g_line = atoi(p + strlen(__FILE__) + 1);
  assert_true(g_line > 0);
  expect_location(msg, "cddp: rank 3: ");
  assert_non_null(strstr(msg, "close(-1) failed: Bad file descriptor"));
}

static void test_die_codes(void **state) {
  (void)state;
  char msg[2048];
  assert_int_equal(run_child(die_data, msg, sizeof msg), CDDP_EXIT_DATA);
  assert_non_null(strstr(msg, "cddp: rank 0: "));
  assert_non_null(strstr(msg, "bad label 7 in row 42"));
  assert_int_equal(run_child(die_no_rank, msg, sizeof msg), CDDP_EXIT_USAGE);
  /* a usage error names the flag and the help, never our source file */
  assert_true(strncmp(msg, "cddp: unknown flag --foo\ncddp: see 'cddp x --help'\n",
                      strlen("cddp: unknown flag --foo\ncddp: see 'cddp x --help'\n")) == 0);
  assert_null(strstr(msg, __FILE__));
  assert_int_equal(run_child(die_control_bytes, msg, sizeof msg), CDDP_EXIT_DATA);
  assert_non_null(strstr(msg, "bad label 'a\\rb\\x1b[2Jc'"));
  assert_null(strchr(msg, '\r'));
  assert_int_equal(run_child(die_with_hook, msg, sizeof msg), 100 + CDDP_EXIT_DIVERGED);
  assert_non_null(strstr(msg, "cddp: rank 1: "));
  assert_non_null(strstr(msg, "loss is NaN"));
  assert_non_null(strstr(msg, "hook called with 4"));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_checked_call), cmocka_unit_test(test_die_codes)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Arenas: measure then allocate exactly; alignment; overflow dies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/error.h"

static void plan(cddp_arena *a, void **p) {
  p[0] = cddp_arena_alloc(a, 100);
  p[1] = cddp_arena_alloc(a, 1);
  p[2] = cddp_arena_alloc(a, 4096);
  p[3] = cddp_arena_alloc(a, 0);
}

static void test_measure_then_alloc(void **state) {
  (void)state;
  cddp_arena m;
  void *p[4];
  cddp_arena_measure(&m, "test");
  plan(&m, p);
  for (int i = 0; i < 4; i++) assert_null(p[i]);
  assert_int_equal(m.used, 256 + 256 + 4096);
  const cddp_backend *bes[2] = {NULL, cddp_cpu_backend()};
  for (int k = 0; k < 2; k++) {
    cddp_arena a;
    cddp_arena_init(&a, bes[k], m.used, "test");
    plan(&a, p);
    for (int i = 0; i < 3; i++) {
      assert_non_null(p[i]);
      /* offsets are aligned; with the CPU backend (256-aligned malloc) addresses too */
      assert_int_equal(((char *)p[i] - a.base) % CDDP_ARENA_ALIGN, 0);
      if (bes[k]) assert_int_equal((uintptr_t)p[i] % CDDP_ARENA_ALIGN, 0);
    }
    assert_true((char *)p[1] - (char *)p[0] == 256);
    memset(p[2], 1, 4096); /* usable */
    assert_int_equal(a.used, m.used);
    cddp_arena_destroy(&a);
    assert_null(a.base);
  }
}

static void test_overflow_dies(void **state) {
  (void)state;
  int fd[2];
  assert_int_equal(pipe(fd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 2);
    cddp_arena a;
    cddp_arena_init(&a, NULL, 300, "activations");
    cddp_arena_alloc(&a, 200);
    cddp_arena_alloc(&a, 200); /* starts at 256: 456 > 300 */
    _exit(0);
  }
  close(fd[1]);
  char buf[1024] = {0};
  ssize_t got = read(fd[0], buf, sizeof buf - 1);
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
  assert_true(got > 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == CDDP_EXIT_RUNTIME);
  assert_non_null(strstr(buf, "arena 'activations' overflow"));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_measure_then_alloc), cmocka_unit_test(test_overflow_dies)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

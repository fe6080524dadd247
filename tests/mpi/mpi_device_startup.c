/* The start-up collectives (agreement check, parameter broadcast, replica
 * check) on a device backend under the MPI communication backend, which
 * stages device buffers through its pinned host pool. They run before the
 * reducer reserves that pool, so they must size it themselves.
 *
 * The "device" is the CPU backend's table marked is_device: every buffer is
 * host memory, but the MPI backend takes the staging path it takes for CUDA.
 * Runs on 1 (no mpirun) and 2 ranks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/log.h"
#include "ddp/process_group.h"
#include "ddp/reducer.h"
#include "mpi/mpi_test_util.h"

static cddp_pg g_pg;
static cddp_backend g_dev;

static void test_startup_on_device(void **st) {
  (void)st;
  cddp_comm *c = cddp_comm_create(&g_pg, &g_dev, "mpi", 30.0);
  /* the trainer's description is a few KB; make it larger than any slack */
  size_t len = 20000;
  char *desc = malloc(len + 1);
  for (size_t i = 0; i < len; i++) desc[i] = i % 61 == 60 ? '\n' : (char)('a' + i % 26);
  desc[len] = 0;
  cddp_ddp_check_same(c, desc);

  size_t n = 100003;
  float *master = g_dev.malloc(n * sizeof(float));
  uint64_t s = 77 + (uint64_t)g_pg.rank; /* different on every rank before the broadcast */
  for (size_t i = 0; i < n; i++) master[i] = tu_uniform(&s);
  cddp_ddp_broadcast_params(c, master, n);
  float *want = malloc(n * sizeof(float));
  s = 77; /* rank 0's values */
  for (size_t i = 0; i < n; i++) want[i] = tu_uniform(&s);
  assert_memory_equal(master, want, n * sizeof(float));
  cddp_ddp_check_replicas(c, master, n, 0); /* dies if the replicas differ */

  cddp_comm_destroy(c);
  g_dev.free(master);
  free(want);
  free(desc);
}

int main(int argc, char **argv) {
  cddp_pg_init(&g_pg, &argc, &argv);
  cddp_log_set_quiet(1);
  g_dev = *cddp_cpu_backend();
  g_dev.name = "host-as-device";
  g_dev.is_device = 1;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_startup_on_device)};
  int fails = cmocka_run_group_tests(tests, NULL, NULL);
  cddp_pg_finalize(&g_pg);
  return fails ? 1 : 0;
}

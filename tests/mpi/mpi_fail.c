/* Fault programs: each mode makes one rank fail in a way the job must
 * survive only by ending, with a clear message and a non-zero status, never
 * a hang. Run by expect_fail.sh, which checks the status and the message.
 *   never_ready   rank 1 never marks a parameter ready
 *   double_ready  rank 0 marks a parameter ready twice
 *   mismatch      rank 1 describes a different model (line 3 differs)
 *   die_startup   rank 1 dies right after start-up; rank 0 waits in a barrier
 *   timeout       rank 1 stalls without joining an all-reduce (timeout 2 s)
 *   timeout_host  the same for a host sum of statistics (cddp_comm_sum_host)
 *   nccl_on_cpu   asks for the nccl backend with the CPU backend: usage error */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "ddp/process_group.h"
#include "ddp/reducer.h"

int main(int argc, char **argv) {
  cddp_pg pg;
  cddp_pg_init(&pg, &argc, &argv);
  const char *mode = argc > 1 ? argv[1] : "";
  cddp_log_set_quiet(1);
  const cddp_backend *be = cddp_cpu_backend();
  if (!strcmp(mode, "die_startup") && pg.rank == 1)
    cddp_die(CDDP_EXIT_RUNTIME, "simulated start-up failure on rank 1");
  if (!strcmp(mode, "nccl_on_cpu")) cddp_comm_create(&pg, be, "nccl", 10.0);
  int timeout = !strcmp(mode, "timeout") || !strcmp(mode, "timeout_host");
  cddp_comm *c = cddp_comm_create(&pg, be, "mpi", timeout ? 2.0 : 60.0);

  if (!strcmp(mode, "timeout_host")) {
    if (pg.rank == 1) sleep(40);
    double loss[4] = {1, 2, 3, 4};
    cddp_comm_sum_host(c, loss, 4, CDDP_F64, NULL);
  } else if (!strcmp(mode, "die_startup") || !strcmp(mode, "timeout")) {
    if (pg.rank == 1) sleep(40); /* stalled: never joins */
    float v = 1;
    cddp_comm_wait(c, !strcmp(mode, "timeout") ? cddp_allreduce(c, &v, 1, CDDP_F32, CDDP_RED_SUM)
                                                : cddp_barrier(c));
  } else if (!strcmp(mode, "mismatch")) {
    char desc[256];
    snprintf(desc, sizeof desc, "model vit\nparam blocks.0.attn.qkv.weight [288,96] fp32\n"
             "param blocks.0.mlp.fc1.weight [%d,96] fp32\nschema cddp.image.v1\n",
             pg.rank == 1 ? 386 : 384);
    cddp_ddp_check_same(c, desc);
  } else {
    static float grad[300];
    cddp_reducer_param ps[3] = {{.name = "blocks.1.norm1.weight", .offset = 200, .numel = 100},
                                {.name = "blocks.1.mlp.fc1.weight", .offset = 100, .numel = 100},
                                {.name = "head.weight", .offset = 0, .numel = 100}};
    cddp_reducer_opts o = {.bucket_bytes = 400, .first_bucket_bytes = 400, .overlap = 1};
    cddp_reducer *r = cddp_reducer_create(c, be, grad, 300, ps, 3, &o);
    cddp_reducer_begin(r, 1);
    cddp_reducer_mark_ready(r, 2);
    if (!(pg.rank == 1 && !strcmp(mode, "never_ready"))) cddp_reducer_mark_ready(r, 1);
    if (pg.rank == 0 && !strcmp(mode, "double_ready")) cddp_reducer_mark_ready(r, 1);
    cddp_reducer_mark_ready(r, 0);
    cddp_reducer_finish(r);
    cddp_reducer_destroy(r);
  }
  cddp_comm_destroy(c);
  cddp_pg_finalize(&pg);
  fprintf(stderr, "mpi_fail: mode '%s' unexpectedly succeeded\n", mode);
  return 0;
}

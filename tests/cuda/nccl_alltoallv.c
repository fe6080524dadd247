/* The NCCL backend's all-to-all(v) (grouped ncclSend/ncclRecv on the
 * communication stream) on device buffers: uneven blocks, empty blocks and
 * scattered displacements, as mpi_collectives checks the MPI backend. Runs on
 * a GPU or under the CPU emulation (label cuda_emu); exits 77 (skipped)
 * without a CUDA device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/ops.h"
#include "ddp/comm.h"
#include "ddp/process_group.h"

/* floats from rank s to rank d: some pairs send nothing */
static size_t nfl(int s, int d) { return 11u * (size_t)((2 * s + 3 * d + 1) % 4); }
static float val(int s, int d, size_t i) { return (float)(1000 * s + 100 * d) + 0.5f * (float)i; }

int main(int argc, char **argv) {
  cddp_pg pg;
  cddp_pg_init(&pg, &argc, &argv);
  int ndev = cddp_cuda_device_count();
  if (ndev == 0) { /* the same answer on every rank: nobody enters a collective */
    if (pg.rank == 0) printf("skipped: no CUDA device\n");
    cddp_pg_finalize(&pg);
    return 77;
  }
  cddp_log_set_quiet(1);
  const cddp_backend *be = cddp_cuda_backend(pg.local_rank % ndev);
  cddp_comm *c = cddp_comm_create(&pg, be, "nccl", 30.0);
  int W = pg.world, R = pg.rank;
  size_t *sb = calloc(W, sizeof *sb), *sd = calloc(W, sizeof *sd);
  size_t *rb = calloc(W, sizeof *rb), *rd = calloc(W, sizeof *rd), st = 0, rt = 0;
  for (int r = W - 1; r >= 0; r--) { /* reverse order with gaps */
    sb[r] = nfl(R, r) * 4, sd[r] = st, st += sb[r] + 16;
    rb[r] = nfl(r, R) * 4, rd[r] = rt, rt += rb[r] + 8;
  }
  char *hs = calloc(st + 4, 1), *hr = calloc(rt + 4, 1);
  for (int d = 0; d < W; d++)
    for (size_t i = 0; i < nfl(R, d); i++) ((float *)(hs + sd[d]))[i] = val(R, d, i);
  void *ds = be->malloc(st + 4), *dr = be->malloc(rt + 4);
  be->memcpy_h2d(ds, hs, st + 4, be->compute);
  be->memset0(dr, rt + 4, be->compute);
  for (int rep = 0; rep < 3; rep++) /* several in flight, waited in order */
    cddp_comm_wait(c, cddp_alltoallv(c, ds, sb, sd, dr, rb, rd));
  be->memcpy_d2h(hr, dr, rt + 4, be->compute);
  be->stream_sync(be->compute);
  int bad = 0;
  for (int s = 0; s < W; s++)
    for (size_t i = 0; i < nfl(s, R); i++)
      if (((float *)(hr + rd[s]))[i] != val(s, R, i)) bad++;
  printf("rank %d: %d wrong of %zu floats received\n", R, bad, rt / 4);
  be->free(ds), be->free(dr);
  free(hs), free(hr), free(sb), free(sd), free(rb), free(rd);
  cddp_comm_destroy(c);
  cddp_pg_finalize(&pg);
  return bad ? 1 : 0;
}

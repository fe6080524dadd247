/* The NCCL model of the CPU emulation under mpirun (any number of ranks): a
 * communicator from a unique id broadcast over MPI, then every call cddp
 * makes, checked against values computed here: all-reduce sum (fp32) and avg
 * (fp16, bf16), broadcast, all-gather, a grouped send/recv ring and a
 * grouped series of broadcasts (cddp's all-gatherv), all on a non-blocking
 * stream whose work runs only when the host synchronises. Also C: the
 * substitute headers must serve C translation units (comm_nccl.c is C). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

static int rank, world, failures;

#define CK(call)                                                                     \
  do {                                                                               \
    int e_ = (int)(call);                                                            \
    if (e_ != 0) {                                                                   \
      fprintf(stderr, "rank %d: %s:%d: %s returned %d\n", rank, __FILE__, __LINE__, #call, e_); \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                  \
    }                                                                                \
  } while (0)

static void expect(int ok, const char *what, size_t i, double got, double want) {
  if (ok) return;
  if (failures++ < 5)
    fprintf(stderr, "rank %d: %s: element %zu is %g, expected %g\n", rank, what, i, got, want);
}

/* fp16 / bf16 of small integers (exact) */
static uint16_t f16_of_int(int v) {
  if (v == 0) return 0;
  int e = 0;
  while ((v >> e) > 1) e++;
  return (uint16_t)(((e + 15) << 10) | ((v << (10 - e)) & 0x3ff));
}
static uint16_t bf16_of_int(int v) {
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)(u >> 16);
}

int main(int argc, char **argv) {
  int level;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &level);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  int ndev;
  CK(cudaGetDeviceCount(&ndev));
  CK(cudaSetDevice(rank % ndev));
  ncclUniqueId id;
  if (rank == 0) CK(ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  ncclComm_t comm;
  CK(ncclCommInitRank(&comm, world, id, rank));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

  enum { N = 1000 };
  float *hf = malloc(N * world * sizeof(float));
  uint16_t *hh = malloc(N * sizeof(uint16_t));
  float *df;
  uint16_t *dh;
  CK(cudaMalloc((void **)&df, N * world * sizeof(float)));
  CK(cudaMalloc((void **)&dh, N * sizeof(uint16_t)));

  /* all-reduce sum, fp32, in place */
  for (int i = 0; i < N; i++) hf[i] = (float)(rank + 1) * (float)(i % 13);
  CK(cudaMemcpyAsync(df, hf, N * sizeof(float), cudaMemcpyHostToDevice, s));
  CK(ncclAllReduce(df, df, N, ncclFloat32, ncclSum, comm, s));
  CK(cudaMemcpyAsync(hf, df, N * sizeof(float), cudaMemcpyDeviceToHost, s)); /* pageable: waits */
  for (int i = 0; i < N; i++) {
    double want = (double)world * (world + 1) / 2 * (i % 13);
    expect(hf[i] == want, "all-reduce sum fp32", (size_t)i, hf[i], want);
  }

  /* all-reduce avg, fp16 and bf16: ranks hold 2(r+1) -> avg W+1 */
  for (int t = 0; t < 2; t++) {
    for (int i = 0; i < N; i++) hh[i] = t ? bf16_of_int(2 * (rank + 1)) : f16_of_int(2 * (rank + 1));
    CK(cudaMemcpyAsync(dh, hh, N * sizeof(uint16_t), cudaMemcpyHostToDevice, s));
    CK(ncclAllReduce(dh, dh, N, t ? ncclBfloat16 : ncclFloat16, ncclAvg, comm, s));
    CK(cudaMemcpyAsync(hh, dh, N * sizeof(uint16_t), cudaMemcpyDeviceToHost, s));
    uint16_t want = t ? bf16_of_int(world + 1) : f16_of_int(world + 1);
    for (int i = 0; i < N; i++)
      expect(hh[i] == want, t ? "all-reduce avg bf16 (bits)" : "all-reduce avg fp16 (bits)",
             (size_t)i, hh[i], want);
  }

  /* broadcast from the last rank */
  int root = world - 1;
  for (int i = 0; i < N; i++) hf[i] = rank == root ? (float)i : -1.0f;
  CK(cudaMemcpyAsync(df, hf, N * sizeof(float), cudaMemcpyHostToDevice, s));
  CK(ncclBroadcast(df, df, N, ncclFloat32, root, comm, s));
  CK(cudaMemcpyAsync(hf, df, N * sizeof(float), cudaMemcpyDeviceToHost, s));
  for (int i = 0; i < N; i++) expect(hf[i] == (float)i, "broadcast", (size_t)i, hf[i], i);

  /* all-gather, in place (rank r's block at offset r*N) */
  for (int i = 0; i < N; i++) hf[i] = (float)(rank * N + i);
  CK(cudaMemcpyAsync(df + (size_t)rank * N, hf, N * sizeof(float), cudaMemcpyHostToDevice, s));
  CK(ncclAllGather(df + (size_t)rank * N, df, N, ncclFloat32, comm, s));
  CK(cudaMemcpyAsync(hf, df, (size_t)N * world * sizeof(float), cudaMemcpyDeviceToHost, s));
  for (int i = 0; i < N * world; i++) expect(hf[i] == (float)i, "all-gather", (size_t)i, hf[i], i);

  /* grouped send/recv ring: receive the left neighbour's rank */
  float *ring;
  CK(cudaMalloc((void **)&ring, 2 * sizeof(float)));
  float mine[2] = {(float)rank, 0.0f};
  CK(cudaMemcpyAsync(ring, mine, sizeof mine, cudaMemcpyHostToDevice, s));
  CK(ncclGroupStart());
  CK(ncclSend(ring, 1, ncclFloat32, (rank + 1) % world, comm, s));
  CK(ncclRecv(ring + 1, 1, ncclFloat32, (rank + world - 1) % world, comm, s));
  CK(ncclGroupEnd());
  CK(cudaMemcpyAsync(mine, ring, sizeof mine, cudaMemcpyDeviceToHost, s));
  expect(mine[1] == (float)((rank + world - 1) % world), "send/recv ring", 1, mine[1],
         (rank + world - 1) % world);

  /* grouped broadcasts, one per root (cddp's all-gatherv) */
  for (int i = 0; i < N * world; i++) hf[i] = -1.0f;
  for (int i = 0; i < N; i++) hf[(size_t)rank * N + i] = (float)(rank * N + i);
  CK(cudaMemcpyAsync(df, hf, (size_t)N * world * sizeof(float), cudaMemcpyHostToDevice, s));
  CK(ncclGroupStart());
  for (int r = 0; r < world; r++)
    CK(ncclBroadcast(df + (size_t)r * N, df + (size_t)r * N, N, ncclFloat32, r, comm, s));
  CK(ncclGroupEnd());
  CK(cudaStreamSynchronize(s));
  CK(cudaMemcpy(hf, df, (size_t)N * world * sizeof(float), cudaMemcpyDeviceToHost));
  for (int i = 0; i < N * world; i++) expect(hf[i] == (float)i, "grouped broadcasts", (size_t)i, hf[i], i);

  /* a host buffer is refused */
  if (ncclAllReduce(hf, hf, N, ncclFloat32, ncclSum, comm, s) != ncclInvalidArgument) {
    fprintf(stderr, "rank %d: an all-reduce of host memory was accepted\n", rank);
    failures++;
  }
  ncclResult_t async = ncclSuccess;
  CK(ncclCommGetAsyncError(comm, &async));
  if (async != ncclSuccess) failures++;

  CK(ncclCommDestroy(comm));
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) printf("nccl model, %d ranks: %d failure(s)\n", world, total);
  MPI_Finalize();
  return total ? 1 : 0;
}

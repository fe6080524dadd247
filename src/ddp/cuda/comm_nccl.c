/* The NCCL communication backend (DESIGN §4), for the CUDA device backend.
 *
 * Bootstrap: rank 0 creates an ncclUniqueId and broadcasts it over MPI;
 * the GPU is local rank % visible GPUs. Each collective is issued on be->comm after
 * cudaStreamWaitEvent on an event recorded on the compute stream (so it reads
 * what backward wrote), and records a per-collective "done" event on be->comm.
 * Waiting makes the compute stream wait on that event: the host never blocks.
 * Averages use ncclAvg. A watchdog thread polls the in-flight events and
 * ncclCommGetAsyncError; an asynchronous NCCL error, or a collective still
 * unfinished timeout_s after it was posted, aborts the communicator
 * (ncclCommAbort) and the job (cddp_die -> MPI_Abort), naming the collective.
 *
 * On the CUDA backend a cddp_stream* IS the cudaStream_t (kernels/cuda). */
#include <cuda_runtime.h>
#include <nccl.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check_cuda.h"
#include "core/check_mpi.h"
#include "core/error.h"
#include "core/log.h"
#include "core/trace.h"
#include "ddp/comm_impl.h"

#define NCCL_MAX_HANDLES 1024

struct cddp_comm_handle {
  cudaEvent_t ready, done;
  cddp_coll coll;
  unsigned long seq;
  double t_post;
  int user_owned; /* posted and not yet waited */
  int in_flight;  /* the watchdog has not yet seen its done event */
};

typedef struct {
  cddp_comm base;
  ncclComm_t nc;
  int dev;
  cudaStream_t compute, stream;
  float *scratch; /* one float for the barrier */
  struct cddp_comm_handle *h;
  int next; /* round-robin search start */
  unsigned long seq;
  pthread_t watchdog;
  pthread_mutex_t mu;
  int stop;
} comm_nccl;

static ncclDataType_t nccl_type(cddp_dtype t) {
  switch (t) {
  case CDDP_F32: return ncclFloat32;
  case CDDP_F16: return ncclFloat16;
  case CDDP_BF16: return ncclBfloat16;
  case CDDP_F64: return ncclFloat64;
  case CDDP_U64: return ncclUint64;
  default: cddp_die(CDDP_EXIT_USAGE, "NCCL all-reduce of %s is not supported", cddp_dtype_name(t));
  }
}

static void describe(const cddp_coll *k, char *s, size_t n) {
  if (k->kind == CDDP_COLL_ALLREDUCE)
    snprintf(s, n, "NCCL all-reduce (%s) of %zu %s elements", k->op == CDDP_RED_AVG ? "avg" : "sum",
             k->count, cddp_dtype_name(k->dtype));
  else
    snprintf(s, n, "NCCL %s of %zu bytes", cddp_coll_name(k->kind), k->count);
}

/* ---- watchdog -------------------------------------------------------------- */
static void *watchdog(void *arg) {
  comm_nccl *m = arg;
  cudaCheck(cudaSetDevice(m->dev));
  struct timespec nap = {0, 1000000}; /* 1 ms */
  for (;;) {
    pthread_mutex_lock(&m->mu);
    int stop = m->stop;
    double now = cddp_now_s();
    for (int i = 0; i < NCCL_MAX_HANDLES && !stop; i++) {
      struct cddp_comm_handle *h = &m->h[i];
      if (!h->in_flight) continue;
      cudaError_t e = cudaEventQuery(h->done);
      if (e == cudaSuccess) {
        h->in_flight = 0;
      } else if (e != cudaErrorNotReady) {
        cudaCheck(e);
      } else if (m->base.timeout_s > 0 && now - h->t_post > m->base.timeout_s) {
        char what[160];
        describe(&h->coll, what, sizeof what);
        ncclCommAbort(m->nc);
        cddp_die(CDDP_EXIT_RUNTIME,
                 "timeout: %s (collective #%lu) did not complete within %.1f s; a rank is "
                 "stalled or dead, aborting the job", what, h->seq, m->base.timeout_s);
      }
    }
    pthread_mutex_unlock(&m->mu);
    if (stop) return NULL;
    ncclResult_t ae = ncclSuccess;
    ncclCheck(ncclCommGetAsyncError(m->nc, &ae));
    if (ae != ncclSuccess && ae != ncclInProgress) {
      ncclCommAbort(m->nc);
      cddp_die(CDDP_EXIT_RUNTIME, "NCCL asynchronous error: %s; communicator aborted",
               ncclGetErrorString(ae));
    }
    nanosleep(&nap, NULL);
  }
}

/* ---- the interface --------------------------------------------------------- */
static cddp_comm_handle *nccl_post(cddp_comm *c, const cddp_coll *k) {
  comm_nccl *m = (comm_nccl *)c;
  struct cddp_comm_handle *h = NULL;
  pthread_mutex_lock(&m->mu);
  for (int t = 0; t < NCCL_MAX_HANDLES && !h; t++) {
    struct cddp_comm_handle *q = &m->h[(m->next + t) % NCCL_MAX_HANDLES];
    if (!q->user_owned && !q->in_flight) h = q;
  }
  if (!h)
    cddp_die(CDDP_EXIT_RUNTIME, "more than %d NCCL collectives in flight", NCCL_MAX_HANDLES);
  m->next = (int)(h - m->h + 1) % NCCL_MAX_HANDLES;
  h->user_owned = 1;
  pthread_mutex_unlock(&m->mu);

  h->coll = *k;
  h->seq = ++m->seq;
  cudaCheck(cudaEventRecord(h->ready, m->compute));
  cudaCheck(cudaStreamWaitEvent(m->stream, h->ready, 0));
  int W = c->world, R = c->rank;
  int tr = cddp_trace_dev_begin(c->be->comm);
  switch (k->kind) {
  case CDDP_COLL_ALLREDUCE:
    ncclCheck(ncclAllReduce(k->buf, k->buf, k->count, nccl_type(k->dtype),
                            k->op == CDDP_RED_AVG ? ncclAvg : ncclSum, m->nc, m->stream));
    break;
  case CDDP_COLL_BROADCAST:
    ncclCheck(ncclBroadcast(k->buf, k->buf, k->count, ncclUint8, k->root, m->nc, m->stream));
    break;
  case CDDP_COLL_ALLGATHER:
    ncclCheck(ncclAllGather(k->send, k->recv, k->count, ncclUint8, m->nc, m->stream));
    break;
  case CDDP_COLL_ALLGATHERV: /* NCCL has no all-gatherv: one broadcast per rank, grouped */
    ncclCheck(ncclGroupStart());
    for (int r = 0; r < W; r++) {
      char *dst = (char *)k->recv + k->displs[r];
      if (k->recv_bytes[r] == 0) continue;
      ncclCheck(ncclBroadcast(r == R ? k->send : dst, dst, k->recv_bytes[r], ncclUint8, r, m->nc,
                              m->stream));
    }
    ncclCheck(ncclGroupEnd());
    break;
  case CDDP_COLL_ALLTOALL:
    ncclCheck(ncclGroupStart());
    for (int r = 0; r < W; r++) {
      ncclCheck(ncclSend((const char *)k->send + (size_t)r * k->count, k->count, ncclUint8, r,
                         m->nc, m->stream));
      ncclCheck(ncclRecv((char *)k->recv + (size_t)r * k->count, k->count, ncclUint8, r, m->nc,
                         m->stream));
    }
    ncclCheck(ncclGroupEnd());
    break;
  case CDDP_COLL_ALLTOALLV: /* grouped point-to-point; empty blocks are skipped */
    ncclCheck(ncclGroupStart());
    for (int r = 0; r < W; r++) {
      if (k->send_bytes[r])
        ncclCheck(ncclSend((const char *)k->send + k->send_displs[r], k->send_bytes[r], ncclUint8,
                           r, m->nc, m->stream));
      if (k->recv_bytes[r])
        ncclCheck(ncclRecv((char *)k->recv + k->displs[r], k->recv_bytes[r], ncclUint8, r, m->nc,
                           m->stream));
    }
    ncclCheck(ncclGroupEnd());
    break;
  case CDDP_COLL_BARRIER:
    ncclCheck(ncclAllReduce(m->scratch, m->scratch, 1, ncclFloat32, ncclSum, m->nc, m->stream));
    break;
  }
  cddp_trace_dev_end(tr, c->be->comm, CDDP_TRACK_GPU_COMM, "comm", cddp_coll_name(k->kind), -1,
                     cddp_coll_bytes(k, W));
  cudaCheck(cudaEventRecord(h->done, m->stream));
  pthread_mutex_lock(&m->mu);
  h->t_post = cddp_now_s();
  h->in_flight = 1;
  pthread_mutex_unlock(&m->mu);
  return h;
}

static void nccl_wait(cddp_comm *c, cddp_comm_handle *h, double *done_s) {
  comm_nccl *m = (comm_nccl *)c;
  if (!h->user_owned)
    cddp_die(CDDP_EXIT_RUNTIME, "cddp_comm_wait on a handle that was already waited for");
  /* the compute stream, not the host, waits */
  cudaCheck(cudaStreamWaitEvent(m->compute, h->done, 0));
  if (done_s) *done_s = cddp_now_s();
  pthread_mutex_lock(&m->mu);
  h->user_owned = 0;
  pthread_mutex_unlock(&m->mu);
}

static void nccl_reserve(cddp_comm *c, size_t bytes) {}

static void nccl_destroy(cddp_comm *c) {
  comm_nccl *m = (comm_nccl *)c;
  cudaCheck(cudaStreamSynchronize(m->stream));
  pthread_mutex_lock(&m->mu);
  m->stop = 1;
  pthread_mutex_unlock(&m->mu);
  pthread_join(m->watchdog, NULL);
  ncclCheck(ncclCommDestroy(m->nc));
  for (int i = 0; i < NCCL_MAX_HANDLES; i++) {
    cudaCheck(cudaEventDestroy(m->h[i].ready));
    cudaCheck(cudaEventDestroy(m->h[i].done));
  }
  cudaCheck(cudaFree(m->scratch));
  pthread_mutex_destroy(&m->mu);
  free(m->h);
  free(m);
}

static const cddp_comm_vtable nccl_vt = {"nccl", nccl_post, nccl_wait, nccl_reserve, nccl_destroy};

cddp_comm *cddp_comm_nccl_create(const cddp_pg *pg, const cddp_backend *be, double timeout_s) {
  comm_nccl *m = cddp_xcalloc(sizeof *m, "NCCL comm");
  m->base.vt = &nccl_vt;
  m->base.be = be;
  m->base.rank = pg->rank;
  m->base.world = pg->world;
  m->base.timeout_s = timeout_s;
  m->compute = (cudaStream_t)be->compute;
  m->stream = (cudaStream_t)be->comm;

  /* The GPU of this rank, as the trainer chose it (ops.h cddp_backend_device_for). */
  int ndev = 0;
  cudaCheck(cudaGetDeviceCount(&ndev));
  if (ndev < 1)
    cddp_die(CDDP_EXIT_RUNTIME, "NCCL: no CUDA device visible to local rank %d", pg->local_rank);
  m->dev = pg->local_rank % ndev;
  int cur = -1;
  cudaCheck(cudaGetDevice(&cur));
  if (cur != m->dev)
    cddp_die(CDDP_EXIT_RUNTIME, "NCCL: the CUDA backend runs on GPU %d but local rank %d must "
             "use GPU %d (local rank %% %d visible GPUs)", cur, pg->local_rank, m->dev, ndev);

  /* Bootstrap over MPI (the MPI comm thread, if any, must be idle: set-up time). */
  ncclUniqueId id;
  if (pg->rank == 0) ncclCheck(ncclGetUniqueId(&id));
  mpiCheck(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
  ncclCheck(ncclCommInitRank(&m->nc, pg->world, id, pg->rank));

  cudaCheck(cudaMalloc((void **)&m->scratch, sizeof(float)));
  cudaCheck(cudaMemset(m->scratch, 0, sizeof(float)));
  m->h = cddp_xcalloc(sizeof *m->h * NCCL_MAX_HANDLES, "NCCL handles");
  for (int i = 0; i < NCCL_MAX_HANDLES; i++) {
    cudaCheck(cudaEventCreateWithFlags(&m->h[i].ready, cudaEventDisableTiming));
    cudaCheck(cudaEventCreateWithFlags(&m->h[i].done, cudaEventDisableTiming));
  }
  pthread_mutex_init(&m->mu, NULL);
  if (pthread_create(&m->watchdog, NULL, watchdog, m) != 0)
    cddp_die(CDDP_EXIT_RUNTIME, "pthread_create of the NCCL watchdog failed");
  return &m->base;
}

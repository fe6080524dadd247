/* The MPI communication backend (DESIGN §4), in the manner of Horovod's
 * background thread: every collective is queued to one communication thread
 * which issues it with a blocking MPI call, in the order the collectives were
 * posted (the same order on every rank, as MPI requires). The caller gets a
 * handle at once and keeps computing; cddp_comm_wait blocks on a condition
 * variable until the thread marks the collective done, or dies after
 * timeout_s naming the collective, which aborts the whole job.
 *
 * Averaging is a post-scale: the thread sums, then multiplies by 1/world on
 * the host (one rounding, identical on every rank). fp16/bf16 payloads are
 * summed with user MPI_Ops that widen each pair to fp32, add and round back
 * (RNE, core/dtype.h), i.e. the same as a half-precision add.
 *
 * Device buffers (be->is_device) are staged through a pinned host pool sized
 * at set-up (the sum of the cddp_comm_reserve calls): the caller copies
 * device->host on be->comm after an event on the compute stream, and copies
 * back in wait(), which then synchronises be->comm. This fallback syncs the host per collective; NCCL is
 * the fast GPU path. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core/check_mpi.h"
#include "core/error.h"
#include "core/log.h"
#include "core/trace.h"
#include "ddp/comm_impl.h"

#define MPI_MAX_HANDLES 4096          /* collectives posted and not yet waited */
#define MPI_CHUNK ((size_t)1 << 30)   /* elements/bytes per MPI call (int counts) */

enum { H_FREE = 0, H_QUEUED, H_DONE };

struct cddp_comm_handle {
  cddp_coll coll;          /* what MPI runs (host pointers: staged if needed) */
  int state;
  unsigned long seq;
  double t_post, t_done;
  /* device staging: where the results go back (dev != NULL) */
  void *dev_out;
  const size_t *dev_recv_bytes, *dev_displs;
  size_t dev_bytes;
  struct cddp_comm_handle *next;
};

typedef struct {
  cddp_comm base;
  MPI_Comm comm;
  MPI_Op op_f16, op_bf16;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  struct cddp_comm_handle *head, *tail, *free_list;
  struct cddp_comm_handle *pool;
  int stop, outstanding;
  unsigned long seq;
  int *icounts, *idispls; /* allgatherv/alltoallv: int arrays for MPI, used by the thread only */
  int *scounts, *sdispls; /* alltoallv send side */
  long poll_ns;           /* CDDP_MPI_POLL_US > 0: nonblocking collectives, sleep between tests */
  atomic_int waiters;     /* callers inside cddp_comm_wait: poll without sleeping */
  char *stage;            /* pinned host staging pool (device backends) */
  size_t stage_cap, stage_used;
  size_t reserved;        /* sum of cddp_comm_reserve calls */
  cddp_event *ev;
} comm_mpi;

/* ---- fp16 / bf16 sums ---------------------------------------------------- */
static void sum_f16(void *in, void *inout, int *len, MPI_Datatype *dt) {
  const uint16_t *a = in;
  uint16_t *b = inout;
  for (int i = 0; i < *len; i++)
    b[i] = cddp_f32_to_f16(cddp_f16_to_f32(a[i]) + cddp_f16_to_f32(b[i]));
}
static void sum_bf16(void *in, void *inout, int *len, MPI_Datatype *dt) {
  const uint16_t *a = in;
  uint16_t *b = inout;
  for (int i = 0; i < *len; i++)
    b[i] = cddp_f32_to_bf16(cddp_bf16_to_f32(a[i]) + cddp_bf16_to_f32(b[i]));
}

static void post_scale(void *buf, size_t n, cddp_dtype t, float s) {
  if (t == CDDP_F32) {
    float *x = buf;
    for (size_t i = 0; i < n; i++) x[i] *= s;
  } else if (t == CDDP_F16) {
    uint16_t *x = buf;
    for (size_t i = 0; i < n; i++) x[i] = cddp_f32_to_f16(cddp_f16_to_f32(x[i]) * s);
  } else {
    uint16_t *x = buf;
    for (size_t i = 0; i < n; i++) x[i] = cddp_f32_to_bf16(cddp_bf16_to_f32(x[i]) * s);
  }
}

static int as_int(size_t v, const char *what) {
  if (v > INT_MAX)
    cddp_die(CDDP_EXIT_RUNTIME, "%s of %zu bytes exceeds MPI's int count limit", what, v);
  return (int)v;
}

/* ---- the communication thread -------------------------------------------- */
/* Gentle progress (poll_ns > 0): while the caller computes, the thread tests a
 * nonblocking collective and sleeps between tests instead of spinning inside a
 * blocking MPI call, which leaves the core to the compute threads (Open MPI's
 * shared-memory transport busy-polls inside blocking calls). Once a caller
 * waits in cddp_comm_wait there is no compute to protect: it finishes with
 * MPI_Wait, at full speed. */
static void complete(comm_mpi *m, MPI_Request *rq) {
  struct timespec nap = {0, m->poll_ns};
  int flag = 0;
  for (;;) {
    if (atomic_load_explicit(&m->waiters, memory_order_relaxed) > 0) {
      mpiCheck(MPI_Wait(rq, MPI_STATUS_IGNORE));
      return;
    }
    mpiCheck(MPI_Test(rq, &flag, MPI_STATUS_IGNORE));
    if (flag) return;
    nanosleep(&nap, NULL);
  }
}

static void run_coll(comm_mpi *m, cddp_coll *k) {
  MPI_Comm cm = m->comm;
  MPI_Request rq;
  int W = m->base.world, R = m->base.rank, poll = m->poll_ns > 0;
  switch (k->kind) {
  case CDDP_COLL_ALLREDUCE: {
    size_t es = cddp_dtype_size(k->dtype);
    MPI_Datatype dt = k->dtype == CDDP_F32   ? MPI_FLOAT
                      : k->dtype == CDDP_F64 ? MPI_DOUBLE
                      : k->dtype == CDDP_U64 ? MPI_UINT64_T
                                             : MPI_UINT16_T;
    MPI_Op op = k->dtype == CDDP_F16 ? m->op_f16 : k->dtype == CDDP_BF16 ? m->op_bf16 : MPI_SUM;
    for (size_t off = 0; off < k->count; off += MPI_CHUNK) {
      size_t n = k->count - off < MPI_CHUNK ? k->count - off : MPI_CHUNK;
      if (m->poll_ns > 0) {
        MPI_Request rq;
        mpiCheck(MPI_Iallreduce(MPI_IN_PLACE, (char *)k->buf + off * es, (int)n, dt, op, cm, &rq));
        complete(m, &rq);
      } else {
        mpiCheck(MPI_Allreduce(MPI_IN_PLACE, (char *)k->buf + off * es, (int)n, dt, op, cm));
      }
    }
    if (k->op == CDDP_RED_AVG && W > 1) post_scale(k->buf, k->count, k->dtype, 1.0f / (float)W);
    break;
  }
  case CDDP_COLL_BROADCAST:
    for (size_t off = 0; off < k->count; off += MPI_CHUNK) {
      size_t n = k->count - off < MPI_CHUNK ? k->count - off : MPI_CHUNK;
      if (poll) {
        mpiCheck(MPI_Ibcast((char *)k->buf + off, (int)n, MPI_BYTE, k->root, cm, &rq));
        complete(m, &rq);
      } else {
        mpiCheck(MPI_Bcast((char *)k->buf + off, (int)n, MPI_BYTE, k->root, cm));
      }
    }
    break;
  case CDDP_COLL_ALLGATHER: {
    int n = as_int(k->count, "all-gather");
    const void *s = k->send == (char *)k->recv + (size_t)R * k->count ? MPI_IN_PLACE : k->send;
    if (poll) {
      mpiCheck(MPI_Iallgather(s, n, MPI_BYTE, k->recv, n, MPI_BYTE, cm, &rq));
      complete(m, &rq);
    } else {
      mpiCheck(MPI_Allgather(s, n, MPI_BYTE, k->recv, n, MPI_BYTE, cm));
    }
    break;
  }
  case CDDP_COLL_ALLGATHERV: {
    for (int r = 0; r < W; r++) {
      m->icounts[r] = as_int(k->recv_bytes[r], "all-gatherv count");
      m->idispls[r] = as_int(k->displs[r], "all-gatherv displacement");
    }
    const void *s = k->send == (char *)k->recv + k->displs[R] ? MPI_IN_PLACE : k->send;
    if (poll) {
      mpiCheck(MPI_Iallgatherv(s, m->icounts[R], MPI_BYTE, k->recv, m->icounts, m->idispls,
                               MPI_BYTE, cm, &rq));
      complete(m, &rq);
    } else {
      mpiCheck(MPI_Allgatherv(s, m->icounts[R], MPI_BYTE, k->recv, m->icounts, m->idispls,
                              MPI_BYTE, cm));
    }
    break;
  }
  case CDDP_COLL_ALLTOALL: {
    int n = as_int(k->count, "all-to-all");
    if (poll) {
      mpiCheck(MPI_Ialltoall(k->send, n, MPI_BYTE, k->recv, n, MPI_BYTE, cm, &rq));
      complete(m, &rq);
    } else {
      mpiCheck(MPI_Alltoall(k->send, n, MPI_BYTE, k->recv, n, MPI_BYTE, cm));
    }
    break;
  }
  case CDDP_COLL_ALLTOALLV:
    for (int r = 0; r < W; r++) {
      m->scounts[r] = as_int(k->send_bytes[r], "all-to-allv count");
      m->sdispls[r] = as_int(k->send_displs[r], "all-to-allv displacement");
      m->icounts[r] = as_int(k->recv_bytes[r], "all-to-allv count");
      m->idispls[r] = as_int(k->displs[r], "all-to-allv displacement");
    }
    if (poll) {
      mpiCheck(MPI_Ialltoallv(k->send, m->scounts, m->sdispls, MPI_BYTE, k->recv, m->icounts,
                              m->idispls, MPI_BYTE, cm, &rq));
      complete(m, &rq);
    } else {
      mpiCheck(MPI_Alltoallv(k->send, m->scounts, m->sdispls, MPI_BYTE, k->recv, m->icounts,
                             m->idispls, MPI_BYTE, cm));
    }
    break;
  case CDDP_COLL_BARRIER:
    if (poll) {
      mpiCheck(MPI_Ibarrier(cm, &rq));
      complete(m, &rq);
    } else {
      mpiCheck(MPI_Barrier(cm));
    }
    break;
  }
}

static void *comm_thread(void *arg) {
  comm_mpi *m = arg;
  for (;;) {
    pthread_mutex_lock(&m->mu);
    while (!m->stop && !m->head) pthread_cond_wait(&m->cv_work, &m->mu);
    if (!m->head) { /* stop requested and queue drained */
      pthread_mutex_unlock(&m->mu);
      return NULL;
    }
    struct cddp_comm_handle *h = m->head;
    m->head = h->next;
    if (!m->head) m->tail = NULL;
    pthread_mutex_unlock(&m->mu);

    double t0 = cddp_trace_t0();
    run_coll(m, &h->coll);
    cddp_trace_since(CDDP_TRACK_COMM, "comm", cddp_coll_name(h->coll.kind), -1, t0,
                     cddp_coll_bytes(&h->coll, m->base.world));

    pthread_mutex_lock(&m->mu);
    h->t_done = cddp_now_s();
    h->state = H_DONE;
    pthread_cond_broadcast(&m->cv_done);
    pthread_mutex_unlock(&m->mu);
  }
}

/* ---- device staging (caller thread) --------------------------------------- */
static size_t al64(size_t b) { return (b + 63) & ~(size_t)63; }

/* A slice of the pinned pool. The reducer reserves the pool for its
 * collectives in flight; a collective that does not fit while it is the only
 * one in flight (the start-up checks, host-value helpers before the reducer
 * exists) grows the pool instead: nothing else can point into it then. */
static char *stage_take(comm_mpi *m, size_t bytes) {
  size_t at = al64(m->stage_used);
  if (at + bytes > m->stage_cap && m->outstanding == 1) {
    const cddp_backend *be = m->base.be;
    if (m->stage) be->host_free(m->stage);
    m->stage_cap = al64(bytes) + 64;
    m->stage = be->host_alloc(m->stage_cap);
    m->stage_used = at = 0;
  }
  if (at + bytes > m->stage_cap)
    cddp_die(CDDP_EXIT_RUNTIME,
             "MPI staging pool exhausted (%zu of %zu bytes in use, %zu more needed, %d "
             "collectives in flight): call cddp_comm_reserve() at set-up with the bytes of all "
             "collectives in flight", m->stage_used, m->stage_cap, bytes, m->outstanding);
  m->stage_used = at + bytes;
  return m->stage + at;
}
/* send (in bytes) and receive (out bytes) slices of one collective, taken at once */
static void stage_pair(comm_mpi *m, size_t in, size_t out, char **s, char **r) {
  *s = stage_take(m, al64(in) + out);
  *r = *s + al64(in);
}

static void to_host(comm_mpi *m, void *dst, const void *src, size_t bytes) {
  const cddp_backend *be = m->base.be;
  be->memcpy_d2h(dst, src, bytes, be->comm);
}

/* Bytes from the start of a buffer to the end of its furthest block. */
static size_t extent(const size_t *bytes, const size_t *displs, int W) {
  size_t e = 0;
  for (int q = 0; q < W; q++)
    if (displs[q] + bytes[q] > e) e = displs[q] + bytes[q];
  return e;
}

/* Rewrites k's device pointers to staged host copies; remembers where results go. */
static void stage_in(comm_mpi *m, struct cddp_comm_handle *h) {
  const cddp_backend *be = m->base.be;
  cddp_coll *k = &h->coll;
  int W = m->base.world;
  be->event_record(m->ev, be->compute);  /* the data was produced on the compute stream */
  be->stream_wait_event(be->comm, m->ev);
  switch (k->kind) {
  case CDDP_COLL_ALLREDUCE:
  case CDDP_COLL_BROADCAST: {
    size_t bytes = k->kind == CDDP_COLL_ALLREDUCE ? k->count * cddp_dtype_size(k->dtype) : k->count;
    char *s = stage_take(m, bytes);
    to_host(m, s, k->buf, bytes);
    h->dev_out = k->buf;
    h->dev_bytes = bytes;
    k->buf = s;
    break;
  }
  case CDDP_COLL_ALLGATHER:
  case CDDP_COLL_ALLTOALL: {
    size_t in = k->kind == CDDP_COLL_ALLGATHER ? k->count : k->count * W;
    char *s, *r;
    stage_pair(m, in, k->count * W, &s, &r);
    to_host(m, s, k->send, in);
    h->dev_out = k->recv;
    h->dev_bytes = k->count * W;
    k->send = s;
    k->recv = r;
    break;
  }
  case CDDP_COLL_ALLGATHERV: {
    char *s, *r;
    stage_pair(m, k->count, extent(k->recv_bytes, k->displs, W), &s, &r);
    to_host(m, s, k->send, k->count);
    h->dev_out = k->recv;
    h->dev_recv_bytes = k->recv_bytes;
    h->dev_displs = k->displs;
    k->send = s;
    k->recv = r;
    break;
  }
  case CDDP_COLL_ALLTOALLV: {
    size_t in = extent(k->send_bytes, k->send_displs, W);
    size_t out = extent(k->recv_bytes, k->displs, W);
    char *s, *r;
    stage_pair(m, in, out, &s, &r);
    to_host(m, s, k->send, in);
    h->dev_out = k->recv;
    h->dev_recv_bytes = k->recv_bytes;
    h->dev_displs = k->displs;
    k->send = s;
    k->recv = r;
    break;
  }
  case CDDP_COLL_BARRIER:
    break;
  }
}

static void stage_out(comm_mpi *m, struct cddp_comm_handle *h) {
  const cddp_backend *be = m->base.be;
  cddp_coll *k = &h->coll;
  if (!h->dev_out) return;
  if (k->kind == CDDP_COLL_ALLGATHERV || k->kind == CDDP_COLL_ALLTOALLV) {
    for (int q = 0; q < m->base.world; q++)
      be->memcpy_h2d((char *)h->dev_out + h->dev_displs[q], (char *)k->recv + h->dev_displs[q],
                     h->dev_recv_bytes[q], be->comm);
  } else {
    const void *src = (k->kind == CDDP_COLL_ALLREDUCE || k->kind == CDDP_COLL_BROADCAST) ? k->buf
                                                                                          : k->recv;
    be->memcpy_h2d(h->dev_out, src, h->dev_bytes, be->comm);
  }
  /* the staging slice is reused by the next collective: finish the copy now */
  be->stream_sync(be->comm);
}

/* ---- the interface --------------------------------------------------------- */
static cddp_comm_handle *mpi_post(cddp_comm *c, const cddp_coll *coll) {
  comm_mpi *m = (comm_mpi *)c;
  pthread_mutex_lock(&m->mu);
  struct cddp_comm_handle *h = m->free_list;
  if (!h)
    cddp_die(CDDP_EXIT_RUNTIME, "more than %d collectives in flight (posted, never waited)",
             MPI_MAX_HANDLES);
  m->free_list = h->next;
  m->outstanding++;
  pthread_mutex_unlock(&m->mu);

  memset(h, 0, sizeof *h);
  h->coll = *coll;
  h->seq = ++m->seq;
  h->t_post = cddp_now_s();
  if (c->be->is_device && coll->kind != CDDP_COLL_BARRIER) stage_in(m, h);

  pthread_mutex_lock(&m->mu);
  h->state = H_QUEUED;
  if (m->tail) m->tail->next = h;
  else m->head = h;
  m->tail = h;
  pthread_cond_signal(&m->cv_work);
  pthread_mutex_unlock(&m->mu);
  return h;
}

static void describe(const cddp_coll *k, char *s, size_t n) {
  if (k->kind == CDDP_COLL_ALLREDUCE)
    snprintf(s, n, "all-reduce (%s) of %zu %s elements", k->op == CDDP_RED_AVG ? "avg" : "sum",
             k->count, cddp_dtype_name(k->dtype));
  else if (k->kind == CDDP_COLL_BARRIER)
    snprintf(s, n, "barrier");
  else
    snprintf(s, n, "%s of %zu bytes", cddp_coll_name(k->kind), k->count);
}

static void mpi_wait(cddp_comm *c, cddp_comm_handle *h, double *done_s) {
  comm_mpi *m = (comm_mpi *)c;
  atomic_fetch_add(&m->waiters, 1);
  pthread_mutex_lock(&m->mu);
  if (h->state == H_FREE)
    cddp_die(CDDP_EXIT_RUNTIME, "cddp_comm_wait on a handle that was already waited for");
  if (c->timeout_s > 0) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    double t = (double)dl.tv_sec + 1e-9 * dl.tv_nsec + c->timeout_s;
    dl.tv_sec = (time_t)t;
    dl.tv_nsec = (long)((t - (double)dl.tv_sec) * 1e9);
    while (h->state != H_DONE) {
      if (pthread_cond_timedwait(&m->cv_done, &m->mu, &dl) == ETIMEDOUT && h->state != H_DONE) {
        char what[160];
        describe(&h->coll, what, sizeof what);
        cddp_die(CDDP_EXIT_RUNTIME,
                 "timeout: %s (collective #%lu) did not complete within %.1f s; a rank is "
                 "stalled or dead, aborting the job", what, h->seq, c->timeout_s);
      }
    }
  } else {
    while (h->state != H_DONE) pthread_cond_wait(&m->cv_done, &m->mu);
  }
  pthread_mutex_unlock(&m->mu);
  atomic_fetch_sub(&m->waiters, 1);

  if (h->dev_out) stage_out(m, h);
  if (done_s) *done_s = h->t_done;

  pthread_mutex_lock(&m->mu);
  h->state = H_FREE;
  h->next = m->free_list;
  m->free_list = h;
  if (--m->outstanding == 0) m->stage_used = 0;
  pthread_mutex_unlock(&m->mu);
}

/* Reservations add up: each caller's collectives may be in flight together
 * with the others' (the reducer's buckets while the sharded embeddings'
 * gradients travel). */
static void mpi_reserve(cddp_comm *c, size_t bytes) {
  comm_mpi *m = (comm_mpi *)c;
  if (!c->be->is_device) return;
  m->reserved += bytes + 64 * 16; /* alignment slack */
  if (m->reserved <= m->stage_cap) return;
  if (m->outstanding) cddp_die(CDDP_EXIT_RUNTIME, "cddp_comm_reserve while collectives are in flight");
  if (m->stage) c->be->host_free(m->stage);
  m->stage_cap = m->reserved;
  m->stage = c->be->host_alloc(m->stage_cap);
}

static void mpi_destroy(cddp_comm *c) {
  comm_mpi *m = (comm_mpi *)c;
  pthread_mutex_lock(&m->mu);
  if (m->outstanding) cddp_log_warn("MPI comm destroyed with %d collectives never waited", m->outstanding);
  m->stop = 1;
  pthread_cond_signal(&m->cv_work);
  pthread_mutex_unlock(&m->mu);
  pthread_join(m->thread, NULL);
  /* from here the calling thread owns MPI again */
  mpiCheck(MPI_Op_free(&m->op_f16));
  mpiCheck(MPI_Op_free(&m->op_bf16));
  mpiCheck(MPI_Comm_free(&m->comm));
  if (m->stage) c->be->host_free(m->stage);
  if (m->ev) c->be->event_destroy(m->ev);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv_work);
  pthread_cond_destroy(&m->cv_done);
  free(m->pool);
  free(m->icounts);
  free(m->idispls);
  free(m->scounts);
  free(m->sdispls);
  free(m);
}

static const cddp_comm_vtable mpi_vt = {"mpi", mpi_post, mpi_wait, mpi_reserve, mpi_destroy};

cddp_comm *cddp_comm_mpi_create(const cddp_pg *pg, const cddp_backend *be, double timeout_s) {
  comm_mpi *m = cddp_xcalloc(sizeof *m, "MPI comm");
  m->base.vt = &mpi_vt;
  m->base.be = be;
  m->base.rank = pg->rank;
  m->base.world = pg->world;
  m->base.timeout_s = timeout_s;
  /* a private communicator: our collectives never match anyone else's */
  mpiCheck(MPI_Comm_dup(MPI_COMM_WORLD, &m->comm));
  mpiCheck(MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN));
  mpiCheck(MPI_Op_create(sum_f16, 1, &m->op_f16));
  mpiCheck(MPI_Op_create(sum_bf16, 1, &m->op_bf16));
  m->icounts = cddp_xcalloc(sizeof(int) * (size_t)pg->world, "all-gatherv counts");
  m->idispls = cddp_xcalloc(sizeof(int) * (size_t)pg->world, "all-gatherv displacements");
  m->scounts = cddp_xcalloc(sizeof(int) * (size_t)pg->world, "all-to-allv counts");
  m->sdispls = cddp_xcalloc(sizeof(int) * (size_t)pg->world, "all-to-allv displacements");
  m->pool = cddp_xcalloc(sizeof *m->pool * MPI_MAX_HANDLES, "comm handles");
  for (int i = MPI_MAX_HANDLES - 1; i >= 0; i--) {
    m->pool[i].next = m->free_list;
    m->free_list = &m->pool[i];
  }
  if (be->is_device) m->ev = be->event_create();
  const char *poll = getenv("CDDP_MPI_POLL_US");
  if (poll && atof(poll) > 0) m->poll_ns = (long)(atof(poll) * 1e3);
  if (m->poll_ns >= 1000000000L) m->poll_ns = 999999999L;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv_work, NULL);
  pthread_cond_init(&m->cv_done, NULL);
  if (pthread_create(&m->thread, NULL, comm_thread, m) != 0)
    cddp_die(CDDP_EXIT_RUNTIME, "pthread_create of the communication thread failed");
  return &m->base;
}

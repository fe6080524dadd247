/* The cddp_comm interface: picks a backend and forwards each collective. */
#include "ddp/comm.h"

#include <string.h>

#include "core/error.h"
#include "core/trace.h"
#include "ddp/comm_impl.h"

/* The trace's clock, so that the reducer's and the comm thread's times can go
 * into a trace as they are. */
double cddp_now_s(void) { return cddp_trace_now(); }

const char *cddp_coll_name(cddp_coll_kind k) {
  static const char *names[] = {"all-reduce", "broadcast", "all-gather",
                                "all-gatherv", "all-to-all", "barrier",
                                "all-to-allv"};
  return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "collective";
}

long long cddp_coll_bytes(const cddp_coll *k, int world) {
  switch (k->kind) {
  case CDDP_COLL_ALLREDUCE: return (long long)(k->count * cddp_dtype_size(k->dtype));
  case CDDP_COLL_ALLTOALL: return (long long)k->count * world;
  case CDDP_COLL_BARRIER: return 0;
  default: return (long long)k->count;
  }
}

cddp_comm *cddp_comm_create(const cddp_pg *pg, const cddp_backend *be, const char *kind,
                            double timeout_s) {
  if (!strcmp(kind, "mpi")) return cddp_comm_mpi_create(pg, be, timeout_s);
  if (!strcmp(kind, "nccl")) {
#ifdef CDDP_HAVE_CUDA
    if (!be->is_device)
      cddp_die(CDDP_EXIT_USAGE, "communication backend nccl needs the cuda device backend "
                                "(got --device %s); use mpi", be->name);
    return cddp_comm_nccl_create(pg, be, timeout_s);
#else
    cddp_die(CDDP_EXIT_USAGE, "communication backend nccl: this cddp was built without CUDA/NCCL; "
                              "use mpi");
#endif
  }
  cddp_die(CDDP_EXIT_USAGE, "unknown communication backend '%s' (use mpi or nccl)", kind);
}

void cddp_comm_destroy(cddp_comm *c) {
  if (c) c->vt->destroy(c);
}
int cddp_comm_rank(const cddp_comm *c) { return c->rank; }
int cddp_comm_world(const cddp_comm *c) { return c->world; }
const char *cddp_comm_kind(const cddp_comm *c) { return c->vt->kind; }
void cddp_comm_reserve(cddp_comm *c, size_t bytes) { c->vt->reserve(c, bytes); }

cddp_comm_handle *cddp_allreduce(cddp_comm *c, void *buf, size_t count, cddp_dtype t,
                                 cddp_reduce_op op) {
  int half_or_f32 = t == CDDP_F32 || t == CDDP_F16 || t == CDDP_BF16;
  if (!half_or_f32 && !((t == CDDP_F64 || t == CDDP_U64) && op == CDDP_RED_SUM))
    cddp_die(CDDP_EXIT_USAGE, "all-reduce of %s is not supported (F32, F16, BF16; sums of F64, "
             "U64)", cddp_dtype_name(t));
  cddp_coll k = {.kind = CDDP_COLL_ALLREDUCE, .buf = buf, .count = count, .dtype = t, .op = op};
  return c->vt->post(c, &k);
}

cddp_comm_handle *cddp_broadcast(cddp_comm *c, void *buf, size_t bytes, int root) {
  if (root < 0 || root >= c->world)
    cddp_die(CDDP_EXIT_USAGE, "broadcast root %d outside [0, %d)", root, c->world);
  cddp_coll k = {.kind = CDDP_COLL_BROADCAST, .buf = buf, .count = bytes, .root = root};
  return c->vt->post(c, &k);
}

cddp_comm_handle *cddp_allgather(cddp_comm *c, const void *send, void *recv, size_t bytes) {
  cddp_coll k = {.kind = CDDP_COLL_ALLGATHER, .send = send, .recv = recv, .count = bytes};
  return c->vt->post(c, &k);
}

cddp_comm_handle *cddp_allgatherv(cddp_comm *c, const void *send, size_t send_bytes, void *recv,
                                  const size_t *recv_bytes, const size_t *displs) {
  if (recv_bytes[c->rank] != send_bytes)
    cddp_die(CDDP_EXIT_USAGE, "all-gatherv: send_bytes %zu != recv_bytes[%d] %zu", send_bytes,
             c->rank, recv_bytes[c->rank]);
  cddp_coll k = {.kind = CDDP_COLL_ALLGATHERV, .send = send, .recv = recv, .count = send_bytes,
                 .recv_bytes = recv_bytes, .displs = displs};
  return c->vt->post(c, &k);
}

cddp_comm_handle *cddp_alltoall(cddp_comm *c, const void *send, void *recv, size_t bytes) {
  cddp_coll k = {.kind = CDDP_COLL_ALLTOALL, .send = send, .recv = recv, .count = bytes};
  return c->vt->post(c, &k);
}

cddp_comm_handle *cddp_alltoallv(cddp_comm *c, const void *send, const size_t *send_bytes,
                                 const size_t *send_displs, void *recv, const size_t *recv_bytes,
                                 const size_t *recv_displs) {
  size_t total = 0;
  for (int r = 0; r < c->world; r++) total += send_bytes[r];
  cddp_coll k = {.kind = CDDP_COLL_ALLTOALLV, .send = send, .recv = recv, .count = total,
                 .send_bytes = send_bytes, .send_displs = send_displs, .recv_bytes = recv_bytes,
                 .displs = recv_displs};
  return c->vt->post(c, &k);
}

cddp_comm_handle *cddp_barrier(cddp_comm *c) {
  cddp_coll k = {.kind = CDDP_COLL_BARRIER};
  return c->vt->post(c, &k);
}

void cddp_comm_wait(cddp_comm *c, cddp_comm_handle *h) { c->vt->wait(c, h, NULL); }
void cddp_comm_wait_timed(cddp_comm *c, cddp_comm_handle *h, double *done_s) {
  c->vt->wait(c, h, done_s);
}

void cddp_comm_sum_host(cddp_comm *c, void *host, size_t count, cddp_dtype t, void *dev_scratch) {
  if (c->world == 1 || !count) return;
  const cddp_backend *be = c->be;
  size_t bytes = count * cddp_dtype_size(t);
  void *buf = be->is_device ? dev_scratch : host;
  if (be->is_device) be->memcpy_h2d(dev_scratch, host, bytes, be->compute);
  cddp_comm_wait(c, cddp_allreduce(c, buf, count, t, CDDP_RED_SUM));
  if (be->is_device) {
    be->memcpy_d2h(host, dev_scratch, bytes, be->compute);
    be->stream_sync(be->compute);
  }
}

void cddp_comm_allgather_host(cddp_comm *c, const void *send, void *recv, size_t bytes) {
  const cddp_backend *be = c->be;
  size_t all = bytes * (size_t)c->world;
  if (!be->is_device) {
    cddp_comm_wait(c, cddp_allgather(c, send, recv, bytes));
    return;
  }
  char *d = be->malloc(all);
  be->memcpy_h2d(d + (size_t)c->rank * bytes, send, bytes, be->compute);
  cddp_comm_wait(c, cddp_allgather(c, d + (size_t)c->rank * bytes, d, bytes));
  be->memcpy_d2h(recv, d, all, be->compute);
  be->stream_sync(be->compute);
  be->free(d);
}

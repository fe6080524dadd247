/* cuda-emu NCCL model over MPI.
 *
 * A communicator is an MPI communicator split from MPI_COMM_WORLD by the
 * unique id (so every process of MPI_COMM_WORLD must call ncclCommInitRank,
 * as every rank of a cddp job does); ranks are checked against the split.
 * Each collective, or each group between ncclGroupStart/End, becomes one
 * operation on its CUDA stream: when the (deferred) stream reaches it, it
 * posts non-blocking MPI calls on the device's memory and is polled with
 * MPI_Testall until they complete, so the other streams keep running as on a
 * GPU. Reductions: MPI's own for the native types; fp16/bf16 through a user
 * MPI_Op that widens each pair to fp32 and rounds the sum back; ncclAvg is
 * the sum divided by the number of ranks. ncclCommAbort makes pending
 * operations finish at once (their results are undefined, as on a GPU);
 * ncclCommGetAsyncError reports ncclSystemError once an MPI call failed.
 * Needs MPI_THREAD_MULTIPLE (the device thread calls MPI while the host
 * threads do too). */
#define OMPI_SKIP_MPICXX 1 /* the C API only */
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <nccl.h>

#include "internal.h"

using namespace cuemu;

struct ncclComm {
  MPI_Comm mpi;
  int rank, nranks, device;
  std::atomic<int> aborted{0};
  std::atomic<int> async_error{ncclSuccess};
};

namespace {

size_t dtype_size(ncclDataType_t t) {
  switch (t) {
  case ncclInt8: case ncclUint8: return 1;
  case ncclFloat16: case ncclBfloat16: return 2;
  case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
  case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
  default: return 0;
  }
}
MPI_Datatype mpi_type(ncclDataType_t t) {
  switch (t) {
  case ncclInt8: return MPI_INT8_T;
  case ncclUint8: return MPI_UINT8_T;
  case ncclInt32: return MPI_INT32_T;
  case ncclUint32: return MPI_UINT32_T;
  case ncclInt64: return MPI_INT64_T;
  case ncclUint64: return MPI_UINT64_T;
  case ncclFloat32: return MPI_FLOAT;
  case ncclFloat64: return MPI_DOUBLE;
  default: return MPI_UINT16_T; /* fp16 / bf16: raw bits, user reduction */
  }
}

template <class T, class ToF, class FromF>
void half_reduce(void *in, void *inout, int *len, ncclRedOp_t op, ToF to, FromF from) {
  T *a = (T *)in, *b = (T *)inout;
  for (int i = 0; i < *len; i++) {
    float x = to(a[i]), y = to(b[i]), r;
    switch (op) {
    case ncclProd: r = x * y; break;
    case ncclMax: r = x > y ? x : y; break;
    case ncclMin: r = x < y ? x : y; break;
    default: r = x + y;
    }
    b[i] = from(r);
  }
}
#define HALF_OP(name, T, op, to, from)                                              \
  void name(void *in, void *inout, int *len, MPI_Datatype *) {                       \
    half_reduce<T>(in, inout, len, op, [](T v) { return to(v); }, [](float f) { return from(f); }); \
  }
HALF_OP(h_sum, __half, ncclSum, __half2float, __float2half_rn)
HALF_OP(h_prod, __half, ncclProd, __half2float, __float2half_rn)
HALF_OP(h_max, __half, ncclMax, __half2float, __float2half_rn)
HALF_OP(h_min, __half, ncclMin, __half2float, __float2half_rn)
HALF_OP(b_sum, __nv_bfloat16, ncclSum, __bfloat162float, __float2bfloat16_rn)
HALF_OP(b_prod, __nv_bfloat16, ncclProd, __bfloat162float, __float2bfloat16_rn)
HALF_OP(b_max, __nv_bfloat16, ncclMax, __bfloat162float, __float2bfloat16_rn)
HALF_OP(b_min, __nv_bfloat16, ncclMin, __bfloat162float, __float2bfloat16_rn)

MPI_Op mpi_op(ncclDataType_t t, ncclRedOp_t op) {
  if (t == ncclFloat16 || t == ncclBfloat16) {
    static MPI_Op ops[2][4];
    static bool made = false;
    if (!made) { /* first use is on the device thread, which is the only user */
      MPI_User_function *f[2][4] = {{h_sum, h_prod, h_max, h_min}, {b_sum, b_prod, b_max, b_min}};
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) MPI_Op_create(f[i][j], 1, &ops[i][j]);
      made = true;
    }
    return ops[t == ncclBfloat16][op == ncclAvg ? 0 : (int)op];
  }
  switch (op) {
  case ncclProd: return MPI_PROD;
  case ncclMax: return MPI_MAX;
  case ncclMin: return MPI_MIN;
  default: return MPI_SUM;
  }
}

/* x /= n elementwise (ncclAvg) */
void divide(void *buf, size_t count, ncclDataType_t t, int n) {
  for (size_t i = 0; i < count; i++) switch (t) {
    case ncclFloat16: ((__half *)buf)[i] = __float2half_rn(__half2float(((__half *)buf)[i]) / n); break;
    case ncclBfloat16: ((__nv_bfloat16 *)buf)[i] = __float2bfloat16_rn(__bfloat162float(((__nv_bfloat16 *)buf)[i]) / n); break;
    case ncclFloat32: ((float *)buf)[i] /= (float)n; break;
    case ncclFloat64: ((double *)buf)[i] /= n; break;
    case ncclInt8: ((int8_t *)buf)[i] = (int8_t)(((int8_t *)buf)[i] / n); break;
    case ncclUint8: ((uint8_t *)buf)[i] = (uint8_t)(((uint8_t *)buf)[i] / n); break;
    case ncclInt32: ((int32_t *)buf)[i] /= n; break;
    case ncclUint32: ((uint32_t *)buf)[i] /= (uint32_t)n; break;
    case ncclInt64: ((int64_t *)buf)[i] /= n; break;
    case ncclUint64: ((uint64_t *)buf)[i] /= (uint64_t)n; break;
    default: break;
    }
}

/* One NCCL call: posts its MPI requests, then finishes after they complete. */
struct call {
  ncclComm *comm;
  std::function<void(std::vector<MPI_Request> &)> post;
  std::function<void()> finish; /* may be empty */
};
struct pending_group {
  std::vector<call> calls;
  cudaStream_t stream = 0;
  bool have_stream = false;
};
thread_local int t_group_depth = 0;
thread_local pending_group t_group;

ncclResult_t submit(std::vector<call> calls, cudaStream_t stream) {
  struct state {
    std::vector<call> calls;
    std::vector<MPI_Request> reqs;
    bool posted = false;
  };
  auto st = std::make_shared<state>();
  st->calls = std::move(calls);
  cudaError_t e = enqueue(stream, "nccl", [st]() {
    for (call &c : st->calls)
      if (c.comm->aborted) return 1; /* aborted: undefined results, as on a GPU */
    if (!st->posted) {
      for (call &c : st->calls) c.post(st->reqs);
      st->posted = true;
    }
    int done = 0;
    int rc = MPI_Testall((int)st->reqs.size(), st->reqs.data(), &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
      report("NCCL model: MPI_Testall failed (%d)", rc);
      for (call &c : st->calls) c.comm->async_error = ncclSystemError;
      return 1;
    }
    if (!done) return 0;
    for (call &c : st->calls)
      if (c.finish) c.finish();
    return 1;
  });
  return e == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
}

ncclResult_t add(ncclComm *comm, cudaStream_t stream, call c) {
  if (t_group_depth > 0) {
    if (t_group.have_stream && t_group.stream != stream) {
      report("NCCL model: a group with operations on two different streams is not modelled");
      return ncclInvalidUsage;
    }
    t_group.stream = stream;
    t_group.have_stream = true;
    t_group.calls.push_back(std::move(c));
    return ncclSuccess;
  }
  std::vector<call> one;
  one.push_back(std::move(c));
  return submit(std::move(one), stream);
}

ncclResult_t check(ncclComm *comm, cudaStream_t stream, const char *fn,
                   std::initializer_list<std::pair<const void *, size_t>> bufs) {
  if (!comm) return ncclInvalidArgument;
  if (comm->aborted) return ncclInvalidUsage;
  if (stream_device(stream) != comm->device) {
    report("%s: stream of device %d, communicator of device %d", fn, stream_device(stream), comm->device);
    return ncclInvalidUsage;
  }
  for (auto &b : bufs)
    if (b.second && range_kind(b.first, b.second) != MEM_DEVICE) {
      report("%s: buffer %p (%zu bytes) is not inside one device allocation", fn, b.first, b.second);
      return ncclInvalidArgument;
    }
  return ncclSuccess;
}

} // namespace

extern "C" {

const char *ncclGetErrorString(ncclResult_t r) {
  switch (r) {
  case ncclSuccess: return "no error";
  case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
  case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
  case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
  case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
  case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
  case ncclRemoteError: return "remote process exited or there was a network error";
  case ncclInProgress: return "NCCL operation in progress";
  default: return "unknown result code";
  }
}
const char *ncclGetLastError(ncclComm_t) { return ""; }
ncclResult_t ncclGetVersion(int *v) {
  if (!v) return ncclInvalidArgument;
  *v = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
  if (!id) return ncclInvalidArgument;
  memset(id, 0, sizeof *id);
  uint64_t s = (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count() ^
               ((uint64_t)getpid() << 32);
  for (int i = 0; i < 4; i++) {
    uint64_t r = rng_next(&s);
    memcpy(id->internal + 8 * i, &r, 8);
  }
  memcpy(id->internal + 32, "cuda-emu", 8);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank) {
  if (!out || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  int inited = 0, level = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    report("ncclCommInitRank: the NCCL model needs MPI to be initialised first");
    return ncclSystemError;
  }
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_MULTIPLE) {
    report("ncclCommInitRank: the NCCL model needs MPI_THREAD_MULTIPLE");
    return ncclSystemError;
  }
  if (memcmp(id.internal + 32, "cuda-emu", 8) != 0) {
    report("ncclCommInitRank: the unique id does not come from ncclGetUniqueId");
    return ncclInvalidArgument;
  }
  uint64_t h;
  memcpy(&h, id.internal, 8);
  auto *c = new ncclComm;
  if (MPI_Comm_split(MPI_COMM_WORLD, (int)(h & 0x3fffffff), rank, &c->mpi) != MPI_SUCCESS) {
    delete c;
    return ncclSystemError;
  }
  int size = 0, me = 0;
  MPI_Comm_size(c->mpi, &size);
  MPI_Comm_rank(c->mpi, &me);
  if (size != nranks || me != rank) {
    report("ncclCommInitRank: %d process(es) joined the unique id (nranks %d), rank %d took "
           "position %d", size, nranks, rank, me);
    MPI_Comm_free(&c->mpi);
    delete c;
    return ncclInvalidArgument;
  }
  c->rank = rank;
  c->nranks = nranks;
  c->device = current_device();
  *out = c;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
  if (!c) return ncclInvalidArgument;
  if (!c->aborted) MPI_Comm_free(&c->mpi);
  /* queued operations may still refer to c: leave the small record */
  c->aborted = 1;
  return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t c) {
  if (!c) return ncclInvalidArgument;
  c->aborted = 1;
  return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *e) {
  if (!c || !e) return ncclInvalidArgument;
  *e = (ncclResult_t)c->async_error.load();
  return ncclSuccess;
}
ncclResult_t ncclCommCount(const ncclComm_t c, int *n) {
  if (!c || !n) return ncclInvalidArgument;
  *n = c->nranks;
  return ncclSuccess;
}
ncclResult_t ncclCommCuDevice(const ncclComm_t c, int *d) {
  if (!c || !d) return ncclInvalidArgument;
  *d = c->device;
  return ncclSuccess;
}
ncclResult_t ncclCommUserRank(const ncclComm_t c, int *r) {
  if (!c || !r) return ncclInvalidArgument;
  *r = c->rank;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  size_t es = dtype_size(t), bytes = count * es;
  if (!es || op < ncclSum || op > ncclAvg || count > (size_t)INT32_MAX) return ncclInvalidArgument;
  ncclResult_t r = check(comm, stream, "ncclAllReduce", {{send, bytes}, {recv, bytes}});
  if (r != ncclSuccess) return r;
  call c{comm,
         [=](std::vector<MPI_Request> &reqs) {
           MPI_Request q;
           MPI_Iallreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, mpi_type(t),
                          mpi_op(t, op), comm->mpi, &q);
           reqs.push_back(q);
         },
         nullptr};
  if (op == ncclAvg) c.finish = [=]() { divide(recv, count, t, comm->nranks); };
  return add(comm, stream, std::move(c));
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t t, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  size_t es = dtype_size(t), bytes = count * es;
  if (!es || !comm || root < 0 || root >= comm->nranks || count > (size_t)INT32_MAX)
    return ncclInvalidArgument;
  bool me_root = comm->rank == root;
  ncclResult_t r = check(comm, stream, "ncclBroadcast", {{me_root ? send : nullptr, me_root ? bytes : 0}, {recv, bytes}});
  if (r != ncclSuccess) return r;
  return add(comm, stream, call{comm,
                                [=](std::vector<MPI_Request> &reqs) {
                                  if (me_root && send != recv) memcpy(recv, send, bytes);
                                  MPI_Request q;
                                  MPI_Ibcast(recv, (int)count, mpi_type(t), root, comm->mpi, &q);
                                  reqs.push_back(q);
                                },
                                nullptr});
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t count, ncclDataType_t t,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  size_t es = dtype_size(t);
  if (!es || !comm || op < ncclSum || op > ncclAvg || count > (size_t)INT32_MAX) return ncclInvalidArgument;
  ncclResult_t r = check(comm, stream, "ncclReduceScatter",
                         {{send, count * es * (size_t)comm->nranks}, {recv, count * es}});
  if (r != ncclSuccess) return r;
  call c{comm,
         [=](std::vector<MPI_Request> &reqs) {
           MPI_Request q;
           MPI_Ireduce_scatter_block(send, recv, (int)count, mpi_type(t), mpi_op(t, op), comm->mpi, &q);
           reqs.push_back(q);
         },
         nullptr};
  if (op == ncclAvg) c.finish = [=]() { divide(recv, count, t, comm->nranks); };
  return add(comm, stream, std::move(c));
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t t,
                           ncclComm_t comm, cudaStream_t stream) {
  size_t es = dtype_size(t);
  if (!es || !comm || count > (size_t)INT32_MAX) return ncclInvalidArgument;
  ncclResult_t r = check(comm, stream, "ncclAllGather",
                         {{send, count * es}, {recv, count * es * (size_t)comm->nranks}});
  if (r != ncclSuccess) return r;
  bool in_place = (const char *)send == (const char *)recv + (size_t)comm->rank * count * es;
  return add(comm, stream, call{comm,
                                [=](std::vector<MPI_Request> &reqs) {
                                  MPI_Request q;
                                  MPI_Iallgather(in_place ? MPI_IN_PLACE : send, (int)count, mpi_type(t),
                                                 recv, (int)count, mpi_type(t), comm->mpi, &q);
                                  reqs.push_back(q);
                                },
                                nullptr});
}

ncclResult_t ncclSend(const void *send, size_t count, ncclDataType_t t, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  size_t es = dtype_size(t);
  if (!es || !comm || peer < 0 || peer >= comm->nranks || count > (size_t)INT32_MAX) return ncclInvalidArgument;
  ncclResult_t r = check(comm, stream, "ncclSend", {{send, count * es}});
  if (r != ncclSuccess) return r;
  return add(comm, stream, call{comm,
                                [=](std::vector<MPI_Request> &reqs) {
                                  MPI_Request q;
                                  MPI_Isend(send, (int)count, mpi_type(t), peer, 0, comm->mpi, &q);
                                  reqs.push_back(q);
                                },
                                nullptr});
}

ncclResult_t ncclRecv(void *recv, size_t count, ncclDataType_t t, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  size_t es = dtype_size(t);
  if (!es || !comm || peer < 0 || peer >= comm->nranks || count > (size_t)INT32_MAX) return ncclInvalidArgument;
  ncclResult_t r = check(comm, stream, "ncclRecv", {{recv, count * es}});
  if (r != ncclSuccess) return r;
  return add(comm, stream, call{comm,
                                [=](std::vector<MPI_Request> &reqs) {
                                  MPI_Request q;
                                  MPI_Irecv(recv, (int)count, mpi_type(t), peer, 0, comm->mpi, &q);
                                  reqs.push_back(q);
                                },
                                nullptr});
}

ncclResult_t ncclGroupStart(void) {
  t_group_depth++;
  return ncclSuccess;
}
ncclResult_t ncclGroupEnd(void) {
  if (t_group_depth <= 0) return ncclInvalidUsage;
  if (--t_group_depth > 0) return ncclSuccess;
  pending_group g = std::move(t_group);
  t_group = pending_group();
  if (g.calls.empty()) return ncclSuccess;
  return submit(std::move(g.calls), g.stream);
}

} /* extern "C" */

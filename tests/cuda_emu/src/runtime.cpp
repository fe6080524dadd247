/* cuda-emu runtime: device memory, streams, events and the emulated device.
 *
 * Memory. cudaMalloc memory is ordinary host memory (posix_memalign, so
 * AddressSanitizer puts redzones around it), filled with 0xff bytes (NaN as
 * floats, -1 as ints) because a GPU does not clear it either. Every
 * allocation is registered with its kind (device / pinned host); copies check
 * that their device side lies inside one device allocation, and a kernel
 * whose pointer argument is neither device nor pinned memory is refused
 * (it would fault on a GPU).
 *
 * Streams are queues that run DEFERRED: nothing runs when it is enqueued. A
 * host call that waits (stream/event/device synchronize, a blocking copy, a
 * copy to pageable memory, cudaEventQuery/cudaStreamQuery) sets a demand on
 * the stream up to the awaited operation; the device thread then runs
 * demanded operations only, picking the next stream at random (seeded) among
 * those whose head is demanded and runnable. A demanded wait on an event
 * demands the recording stream up to the record at once (not when the wait
 * reaches the head of its queue), so the recording stream's work races with
 * the work queued ahead of the wait, as on a GPU. So a missing
 * cudaStreamWaitEvent leaves the producer's work undone when the consumer
 * runs, or lets the consumer run before a copy queued on another stream that
 * the host demands later, and the consumer reads stale data, as a GPU would
 * when the consumer happens to run first.
 *
 * One device thread executes all stream work (kernels block by block, copies,
 * library calls), so kernels never run concurrently; the host threads only
 * enqueue and wait. */
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <pthread.h>
#include <unordered_set>
#include <vector>

#include "internal.h"

namespace cuemu {

/* ---- configuration --------------------------------------------------------- */
static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end = nullptr;
  long x = strtol(v, &end, 10);
  if (*end) {
    fprintf(stderr, "cuda-emu: %s=%s is not an integer\n", name, v);
    exit(2);
  }
  return x;
}
uint64_t seed() {
  static uint64_t s = (uint64_t)env_long("CUEMU_SEED", 1);
  return s;
}
uint64_t rng_next(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static int device_count() {
  static int n = (int)env_long("CUEMU_DEVICE_COUNT", 4);
  return n;
}
static int sm_count() {
  static int n = (int)env_long("CUEMU_SM_COUNT", 4);
  return n;
}

void report(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "cuda-emu: %s [CUEMU_SEED=%llu]\n", buf, (unsigned long long)seed());
  fflush(stderr);
}

/* ---- errors ---------------------------------------------------------------- */
static thread_local cudaError_t t_last = cudaSuccess;
static thread_local int t_device = 0;
cudaError_t set_last_error(cudaError_t e) {
  if (e != cudaSuccess) t_last = e;
  return e;
}
int current_device() { return t_device; }

/* ---- memory registry ------------------------------------------------------- */
struct alloc_info {
  size_t bytes;
  mem_kind kind;
};
static std::mutex &mem_mu() {
  static std::mutex *m = new std::mutex;
  return *m;
}
static std::map<uintptr_t, alloc_info> &allocs() {
  static auto *m = new std::map<uintptr_t, alloc_info>;
  return *m;
}
mem_kind range_kind(const void *p, size_t bytes) {
  uintptr_t u = (uintptr_t)p;
  std::lock_guard<std::mutex> g(mem_mu());
  auto &m = allocs();
  auto it = m.upper_bound(u);
  if (it == m.begin()) return MEM_NONE;
  --it;
  if (u + bytes > it->first + it->second.bytes) return MEM_NONE;
  if (u > it->first + it->second.bytes) return MEM_NONE;
  return it->second.kind;
}
int is_device_range(const void *p, size_t bytes) { return range_kind(p, bytes) == MEM_DEVICE; }
int kernel_may_access(const void *p) { return !p || range_kind(p, 0) != MEM_NONE; }

static cudaError_t mem_alloc(void **out, size_t bytes, mem_kind kind) {
  if (!out) return cudaErrorInvalidValue;
  void *p = nullptr;
  if (posix_memalign(&p, 256, bytes ? bytes : 1) != 0) {
    *out = nullptr;
    return cudaErrorMemoryAllocation;
  }
  if (kind == MEM_DEVICE) memset(p, 0xff, bytes);
  std::lock_guard<std::mutex> g(mem_mu());
  allocs()[(uintptr_t)p] = alloc_info{bytes, kind};
  *out = p;
  return cudaSuccess;
}
static cudaError_t mem_free(void *p, mem_kind kind, const char *fn) {
  if (!p) return cudaSuccess;
  cudaError_t e = cudaDeviceSynchronize(); /* nothing queued may still use it */
  if (e != cudaSuccess) return e;
  std::lock_guard<std::mutex> g(mem_mu());
  auto it = allocs().find((uintptr_t)p);
  if (it == allocs().end() || it->second.kind != kind) {
    report("%s(%p): not the start of a %s allocation", fn, p,
           kind == MEM_DEVICE ? "device (cudaMalloc)" : "pinned (cudaMallocHost)");
    return cudaErrorInvalidValue;
  }
  allocs().erase(it);
  free(p);
  return cudaSuccess;
}

/* ---- streams and the device thread ---------------------------------------- */
struct op {
  uint64_t seq;
  const char *what;
  stream_fn fn;
  struct stream_rec *wait_s; /* a wait: runnable once wait_s has done wait_seq */
  uint64_t wait_seq;
};
struct stream_rec {
  int device;
  unsigned flags;
  int legacy; /* the NULL stream */
  std::deque<op> q;
  uint64_t enq = 0, done = 0, demand = 0;
};
struct event_rec {
  int device;
  unsigned flags;
  stream_rec *s = nullptr; /* last record */
  uint64_t seq = 0, gen = 0, done_gen = 0;
  double t_ms = 0.0;
};

struct engine {
  std::mutex mu;
  std::condition_variable work, done;
  std::vector<stream_rec *> streams;
  stream_rec *legacy;
  cudaError_t sticky = cudaSuccess;
  uint64_t rng;
  bool started = false;
};
static engine &E() {
  static engine *e = [] {
    auto *x = new engine;
    x->legacy = new stream_rec{0, cudaStreamDefault, 1, {}};
    x->streams.push_back(x->legacy);
    x->rng = seed() ^ 0x5eedull;
    return x;
  }();
  return *e;
}
cudaError_t sticky_error() {
  std::lock_guard<std::mutex> g(E().mu);
  return E().sticky;
}

static double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/* A failed operation poisons the context (as a GPU fault does): every queue
 * is dropped and every waiter wakes up to the error. */
static void fail_all(engine &e, cudaError_t err) {
  if (e.sticky == cudaSuccess) e.sticky = err;
  for (stream_rec *s : e.streams) {
    s->q.clear();
    s->done = s->enq;
  }
  e.done.notify_all();
}

/* Demands s up to seq, and through every wait in that range the streams
 * it waits on (each queued op is looked at once: demand only grows). */
static void demand_locked(stream_rec *s, uint64_t seq) {
  if (s->demand >= seq) return;
  uint64_t from = s->demand + 1;
  s->demand = seq;
  if (s->q.empty()) return;
  uint64_t first = s->q.front().seq;
  for (uint64_t k = from > first ? from : first; k <= seq && k - first < s->q.size(); k++) {
    const op &o = s->q[k - first];
    if (o.wait_s) demand_locked(o.wait_s, o.wait_seq);
  }
}

static void *device_thread(void *) {
  engine &e = E();
  std::unique_lock<std::mutex> lk(e.mu);
  std::vector<stream_rec *> cand;
  int idle_polls = 0;
  for (;;) {
    cand.clear();
    for (stream_rec *s : e.streams) {
      if (s->q.empty() || s->q.front().seq > s->demand) continue;
      op &o = s->q.front();
      if (o.wait_s && o.wait_s->done < o.wait_seq) continue; /* demanded with it */
      cand.push_back(s);
    }
    if (cand.empty()) {
      e.work.wait(lk);
      continue;
    }
    if (idle_polls >= (int)cand.size() * 4) { /* only unfinished polls (NCCL) left */
      e.work.wait_for(lk, std::chrono::microseconds(100));
      idle_polls = 0;
      continue;
    }
    stream_rec *s = cand[rng_next(&e.rng) % cand.size()];
    op &o = s->q.front(); /* stable: only this thread pops, push_back keeps references */
    int r = 1;
    if (!o.wait_s) {
      lk.unlock();
      r = o.fn();
      lk.lock();
    }
    if (r < 0) {
      fail_all(e, cudaErrorLaunchFailure);
      continue;
    }
    if (r == 0) {
      idle_polls++;
      continue;
    }
    idle_polls = 0;
    s->done = o.seq;
    s->q.pop_front();
    e.done.notify_all();
  }
  return nullptr;
}

static void start_locked(engine &e) {
  if (e.started) return;
  pthread_t t;
  if (pthread_create(&t, nullptr, device_thread, nullptr) != 0) {
    report("cannot start the device thread");
    abort();
  }
  pthread_detach(t);
  e.started = true;
}

static stream_rec *rec(cudaStream_t s) { return s ? (stream_rec *)s : E().legacy; }

static bool known_stream(engine &e, stream_rec *s) {
  for (stream_rec *x : e.streams)
    if (x == s) return true;
  return false;
}

static uint64_t push_locked(engine &e, stream_rec *s, const char *what, stream_fn fn,
                            stream_rec *wait_s = nullptr, uint64_t wait_seq = 0) {
  s->q.push_back(op{++s->enq, what, std::move(fn), wait_s, wait_seq});
  return s->enq;
}

/* Legacy default stream semantics: it waits for all earlier work of blocking
 * streams, and blocking streams wait for its earlier work. */
static void legacy_order_locked(engine &e, stream_rec *s) {
  if (s->legacy) {
    for (stream_rec *b : e.streams)
      if (!b->legacy && !(b->flags & cudaStreamNonBlocking) && b->enq > b->done)
        push_locked(e, s, "legacy-stream order", nullptr, b, b->enq);
  } else if (!(s->flags & cudaStreamNonBlocking) && e.legacy->enq > e.legacy->done) {
    push_locked(e, s, "legacy-stream order", nullptr, e.legacy, e.legacy->enq);
  }
}

static cudaError_t wait_locked(engine &e, std::unique_lock<std::mutex> &lk, stream_rec *s,
                               uint64_t seq) {
  start_locked(e);
  demand_locked(s, seq);
  e.work.notify_one();
  e.done.wait(lk, [&] { return s->done >= seq || e.sticky != cudaSuccess; });
  return e.sticky;
}

cudaError_t enqueue(cudaStream_t st, const char *what, stream_fn fn) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  if (e.sticky != cudaSuccess) return e.sticky;
  stream_rec *s = rec(st);
  if (!known_stream(e, s)) return cudaErrorInvalidResourceHandle;
  legacy_order_locked(e, s);
  push_locked(e, s, what, std::move(fn));
  return cudaSuccess;
}

cudaError_t enqueue_and_wait(cudaStream_t st, const char *what, stream_fn fn) {
  engine &e = E();
  std::unique_lock<std::mutex> lk(e.mu);
  if (e.sticky != cudaSuccess) return e.sticky;
  stream_rec *s = rec(st);
  if (!known_stream(e, s)) return cudaErrorInvalidResourceHandle;
  legacy_order_locked(e, s);
  uint64_t seq = push_locked(e, s, what, std::move(fn));
  return wait_locked(e, lk, s, seq);
}

int stream_valid(cudaStream_t st) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  return known_stream(e, rec(st));
}
int stream_device(cudaStream_t st) {
  if (!st) return current_device();
  return rec(st)->device;
}

} // namespace cuemu

using namespace cuemu;

#define RET(e) return set_last_error(e)

/* ---- the C API ------------------------------------------------------------- */
extern "C" {

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInvalidPitchValue: return "cudaErrorInvalidPitchValue";
  case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
  case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
  case cudaErrorNoDevice: return "cudaErrorNoDevice";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  case cudaErrorNotReady: return "cudaErrorNotReady";
  case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
  case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
  case cudaErrorIllegalInstruction: return "cudaErrorIllegalInstruction";
  case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  default: return "cudaErrorUnknown";
  }
}
const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorInvalidPitchValue: return "invalid pitch argument";
  case cudaErrorInvalidDevicePointer: return "invalid device pointer";
  case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  case cudaErrorInvalidDevice: return "invalid device ordinal";
  case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  case cudaErrorNotReady: return "device not ready";
  case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
  case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
  case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
  case cudaErrorLaunchFailure: return "unspecified launch failure";
  default: return "unknown error";
  }
}
cudaError_t cudaGetLastError(void) {
  cudaError_t s = sticky_error();
  if (s != cudaSuccess) return s;
  cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) {
  cudaError_t s = sticky_error();
  return s != cudaSuccess ? s : t_last;
}

/* ---- devices ----------------------------------------------------------------- */
cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) RET(cudaErrorInvalidValue);
  *count = device_count();
  if (*count <= 0) RET(cudaErrorNoDevice);
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d < 0 || d >= device_count()) RET(cudaErrorInvalidDevice);
  t_device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
  if (!d) RET(cudaErrorInvalidValue);
  *d = t_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
  if (!p) RET(cudaErrorInvalidValue);
  if (d < 0 || d >= device_count()) RET(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "cuda-emu CPU emulation (emulated GPU %d, seed %llu)", d,
           (unsigned long long)seed());
  p->totalGlobalMem = (size_t)16 << 30;
  p->sharedMemPerBlock = 48 << 10;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
  p->totalConstMem = 64 << 10;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = sm_count();
  p->maxThreadsPerMultiProcessor = 2048;
  p->unifiedAddressing = 1;
  p->canMapHostMemory = 1;
  p->concurrentKernels = 1;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
  cudaDeviceProp p;
  if (!v) RET(cudaErrorInvalidValue);
  cudaError_t e = cudaGetDeviceProperties(&p, d);
  if (e != cudaSuccess) return e;
  switch (a) {
  case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
  case cudaDevAttrMaxSharedMemoryPerBlock: *v = (int)p.sharedMemPerBlock; break;
  case cudaDevAttrWarpSize: *v = p.warpSize; break;
  case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
  case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
  case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
  default: RET(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
  engine &e = E();
  std::unique_lock<std::mutex> lk(e.mu);
  for (stream_rec *s : e.streams) {
    cudaError_t r = wait_locked(e, lk, s, s->enq);
    if (r != cudaSuccess) RET(r);
  }
  return cudaSuccess;
}
cudaError_t cudaDeviceReset(void) { return cudaDeviceSynchronize(); }

/* ---- memory ------------------------------------------------------------------ */
cudaError_t cudaMalloc(void **p, size_t bytes) { RET(mem_alloc(p, bytes, MEM_DEVICE)); }
cudaError_t cudaFree(void *p) { RET(mem_free(p, MEM_DEVICE, "cudaFree")); }
cudaError_t cudaMallocHost(void **p, size_t bytes) { RET(mem_alloc(p, bytes, MEM_PINNED)); }
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
  (void)flags;
  RET(mem_alloc(p, bytes, MEM_PINNED));
}
cudaError_t cudaFreeHost(void *p) { RET(mem_free(p, MEM_PINNED, "cudaFreeHost")); }
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  if (free_bytes) *free_bytes = (size_t)16 << 30;
  if (total_bytes) *total_bytes = (size_t)16 << 30;
  return cudaSuccess;
}

/* Checks one side of a copy: a device side must lie inside one device
 * allocation; a host side must not be device memory. */
static bool side_ok(const void *p, size_t bytes, bool device, const char *fn, const char *side) {
  mem_kind k = range_kind(p, bytes);
  if (device && k != MEM_DEVICE) {
    report("%s: %s %p (+%zu bytes) is not inside one device allocation", fn, side, p, bytes);
    return false;
  }
  if (!device && k == MEM_DEVICE) {
    report("%s: %s %p is device memory but the copy kind says host", fn, side, p);
    return false;
  }
  return true;
}

/* Rows of a (possibly 2-D) copy; the host side's kind decides when the host
 * may reuse its buffer (CUDA's rules for pageable vs pinned memory). */
static cudaError_t copy_2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                           size_t height, cudaMemcpyKind kind, cudaStream_t st, bool blocking,
                           const char *fn) {
  if (!width || !height) return cudaSuccess;
  if (dpitch < width || spitch < width) return cudaErrorInvalidPitchValue;
  size_t dspan = dpitch * (height - 1) + width, sspan = spitch * (height - 1) + width;
  if (kind == cudaMemcpyDefault) {
    bool dd = range_kind(dst, dspan) == MEM_DEVICE, sd = range_kind(src, sspan) == MEM_DEVICE;
    kind = sd ? (dd ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
              : (dd ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  }
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
    return cudaErrorInvalidMemcpyDirection;
  bool ddev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool sdev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (!side_ok(dst, dspan, ddev, fn, "destination") || !side_ok(src, sspan, sdev, fn, "source"))
    return cudaErrorInvalidValue;
  if (!stream_valid(st)) return cudaErrorInvalidResourceHandle;
  char *d = (char *)dst;
  const char *s = (const char *)src;
  auto rows = [=](const char *from, size_t fpitch) {
    return [=]() {
      for (size_t r = 0; r < height; r++) memcpy(d + r * dpitch, from + r * fpitch, width);
      return 1;
    };
  };
  if (!sdev && range_kind(src, sspan) != MEM_PINNED) {
    /* pageable source: staged at the call, the host may reuse it at once */
    auto stage = std::make_shared<std::vector<char>>(width * height);
    for (size_t r = 0; r < height; r++) memcpy(stage->data() + r * width, s + r * spitch, width);
    auto run = [=]() {
      for (size_t r = 0; r < height; r++) memcpy(d + r * dpitch, stage->data() + r * width, width);
      return 1;
    };
    return blocking ? enqueue_and_wait(st, fn, run) : enqueue(st, fn, run);
  }
  /* a copy into pageable host memory returns only once it is done */
  if (blocking || (!ddev && range_kind(dst, dspan) != MEM_PINNED))
    return enqueue_and_wait(st, fn, rows(s, spitch));
  return enqueue(st, fn, rows(s, spitch));
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
  RET(copy_2d(dst, n, src, n, n, 1, kind, 0, true, "cudaMemcpy"));
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t st) {
  RET(copy_2d(dst, n, src, n, n, 1, kind, st, false, "cudaMemcpyAsync"));
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, cudaMemcpyKind kind, cudaStream_t st) {
  RET(copy_2d(dst, dpitch, src, spitch, width, height, kind, st, false, "cudaMemcpy2DAsync"));
}
static cudaError_t memset_on(void *p, int v, size_t n, cudaStream_t st, const char *fn) {
  if (!n) return cudaSuccess;
  if (!side_ok(p, n, true, fn, "destination")) return cudaErrorInvalidValue;
  return enqueue(st, fn, [=]() {
    memset(p, v, n);
    return 1;
  });
}
cudaError_t cudaMemset(void *p, int v, size_t n) { RET(memset_on(p, v, n, 0, "cudaMemset")); }
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t st) {
  RET(memset_on(p, v, n, st, "cudaMemsetAsync"));
}

/* ---- streams ----------------------------------------------------------------- */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out, unsigned int flags) {
  if (!out) RET(cudaErrorInvalidValue);
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  auto *s = new stream_rec{t_device, flags, 0, {}};
  e.streams.push_back(s);
  *out = (cudaStream_t)s;
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *out) { return cudaStreamCreateWithFlags(out, cudaStreamDefault); }
/* Pending work still completes (CUDA semantics): the record stays, demanded
 * to its end, and is never reused. */
cudaError_t cudaStreamDestroy(cudaStream_t st) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  stream_rec *s = (stream_rec *)st;
  if (!st || !known_stream(e, s)) RET(cudaErrorInvalidResourceHandle);
  demand_locked(s, s->enq);
  e.work.notify_one();
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t st) {
  engine &e = E();
  std::unique_lock<std::mutex> lk(e.mu);
  stream_rec *s = rec(st);
  if (!known_stream(e, s)) RET(cudaErrorInvalidResourceHandle);
  RET(wait_locked(e, lk, s, s->enq));
}
cudaError_t cudaStreamQuery(cudaStream_t st) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  stream_rec *s = rec(st);
  if (!known_stream(e, s)) RET(cudaErrorInvalidResourceHandle);
  if (e.sticky != cudaSuccess) RET(e.sticky);
  if (s->done >= s->enq) return cudaSuccess;
  start_locked(e);
  demand_locked(s, s->enq);
  e.work.notify_one();
  return cudaErrorNotReady;
}

/* ---- events ------------------------------------------------------------------ */
/* every live event (a job creates thousands: one lookup per event call) */
static std::unordered_set<event_rec *> &events() {
  static auto *v = new std::unordered_set<event_rec *>;
  return *v;
}
static bool known_event(event_rec *ev) { return events().count(ev) != 0; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *out, unsigned int flags) {
  if (!out) RET(cudaErrorInvalidValue);
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  auto *ev = new event_rec;
  ev->device = t_device;
  ev->flags = flags;
  events().insert(ev);
  *out = (cudaEvent_t)ev;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *out) { return cudaEventCreateWithFlags(out, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t evh) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  event_rec *ev = (event_rec *)evh;
  if (!events().erase(ev)) RET(cudaErrorInvalidResourceHandle);
  /* a record still queued may refer to the event: keep its (tiny) memory,
   * reachable so that LeakSanitizer does not call it a leak */
  static auto *retired = new std::vector<event_rec *>;
  retired->push_back(ev);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t evh, cudaStream_t st) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  event_rec *ev = (event_rec *)evh;
  stream_rec *s = rec(st);
  if (!known_event(ev) || !known_stream(e, s)) RET(cudaErrorInvalidResourceHandle);
  if (e.sticky != cudaSuccess) RET(e.sticky);
  if (!s->legacy && s->device != ev->device) {
    report("cudaEventRecord: event of device %d recorded on a stream of device %d", ev->device,
           s->device);
    RET(cudaErrorInvalidResourceHandle);
  }
  legacy_order_locked(e, s);
  uint64_t gen = ++ev->gen;
  ev->s = s;
  ev->seq = push_locked(e, s, "cudaEventRecord", [ev, gen]() {
    double t = now_ms();
    std::lock_guard<std::mutex> g2(E().mu);
    if (ev->gen == gen) { /* a later record replaces this one */
      ev->t_ms = t;
      ev->done_gen = gen;
    }
    return 1;
  });
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t st, cudaEvent_t evh, unsigned int flags) {
  (void)flags;
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  event_rec *ev = (event_rec *)evh;
  stream_rec *s = rec(st);
  if (!known_event(ev) || !known_stream(e, s)) RET(cudaErrorInvalidResourceHandle);
  if (e.sticky != cudaSuccess) RET(e.sticky);
  if (!ev->s) return cudaSuccess; /* never recorded: nothing to wait for */
  legacy_order_locked(e, s);
  push_locked(e, s, "cudaStreamWaitEvent", nullptr, ev->s, ev->seq);
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t evh) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  event_rec *ev = (event_rec *)evh;
  if (!known_event(ev)) RET(cudaErrorInvalidResourceHandle);
  if (e.sticky != cudaSuccess) RET(e.sticky);
  if (!ev->s || ev->s->done >= ev->seq) return cudaSuccess;
  start_locked(e);
  demand_locked(ev->s, ev->seq);
  e.work.notify_one();
  return cudaErrorNotReady;
}
cudaError_t cudaEventSynchronize(cudaEvent_t evh) {
  engine &e = E();
  std::unique_lock<std::mutex> lk(e.mu);
  event_rec *ev = (event_rec *)evh;
  if (!known_event(ev)) RET(cudaErrorInvalidResourceHandle);
  if (!ev->s) return cudaSuccess;
  RET(wait_locked(e, lk, ev->s, ev->seq));
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  event_rec *x = (event_rec *)a, *y = (event_rec *)b;
  if (!ms || !known_event(x) || !known_event(y)) RET(cudaErrorInvalidResourceHandle);
  if ((x->flags | y->flags) & cudaEventDisableTiming) RET(cudaErrorInvalidResourceHandle);
  if (!x->s || !y->s) RET(cudaErrorInvalidResourceHandle);
  if (x->done_gen != x->gen || y->done_gen != y->gen) RET(cudaErrorNotReady);
  *ms = (float)(y->t_ms - x->t_ms);
  return cudaSuccess;
}

} /* extern "C" */

/* cuda-emu streams, events and the device thread.
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
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <unordered_set>
#include <vector>

#include "internal.h"

namespace cuemu {

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

/* Whether s has done seq; if not, demands it (a query may be polled). */
static cudaError_t query_locked(engine &e, stream_rec *s, uint64_t seq) {
  if (s->done >= seq) return cudaSuccess;
  start_locked(e);
  demand_locked(s, seq);
  e.work.notify_one();
  return cudaErrorNotReady;
}

static cudaError_t wait_locked(engine &e, std::unique_lock<std::mutex> &lk, stream_rec *s,
                               uint64_t seq) {
  start_locked(e);
  demand_locked(s, seq);
  e.work.notify_one();
  e.done.wait(lk, [&] { return s->done >= seq || e.sticky != cudaSuccess; });
  return e.sticky;
}

/* Queues fn on stream st (after the legacy stream's ordering); *seq gets its
 * place in the queue. */
static cudaError_t enqueue_locked(engine &e, cudaStream_t st, const char *what, stream_fn fn,
                                  stream_rec **s, uint64_t *seq) {
  if (e.sticky != cudaSuccess) return e.sticky;
  *s = rec(st);
  if (!known_stream(e, *s)) return cudaErrorInvalidResourceHandle;
  legacy_order_locked(e, *s);
  *seq = push_locked(e, *s, what, std::move(fn));
  return cudaSuccess;
}

cudaError_t enqueue(cudaStream_t st, const char *what, stream_fn fn) {
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  stream_rec *s;
  uint64_t seq;
  return enqueue_locked(e, st, what, std::move(fn), &s, &seq);
}

cudaError_t enqueue_and_wait(cudaStream_t st, const char *what, stream_fn fn) {
  engine &e = E();
  std::unique_lock<std::mutex> lk(e.mu);
  stream_rec *s;
  uint64_t seq;
  cudaError_t r = enqueue_locked(e, st, what, std::move(fn), &s, &seq);
  return r != cudaSuccess ? r : wait_locked(e, lk, s, seq);
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

extern "C" {

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
/* ---- streams ----------------------------------------------------------------- */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out, unsigned int flags) {
  if (!out) RET(cudaErrorInvalidValue);
  engine &e = E();
  std::lock_guard<std::mutex> g(e.mu);
  auto *s = new stream_rec{current_device(), flags, 0, {}};
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
  return query_locked(e, s, s->enq);
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
  ev->device = current_device();
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
  return ev->s ? query_locked(e, ev->s, ev->seq) : cudaSuccess;
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

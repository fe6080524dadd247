/* cuda-emu kernel execution: blocks one after another (in a seeded random
 * order), each CUDA thread of a block a fiber (Boost.Context).
 *
 * Fibers are started lazily: one "runner" fiber runs the block's threads one
 * after another, in a seeded random order, as plain calls. Only when a thread
 * waits (__syncthreads, a warp shuffle or vote) does it keep that fiber, and
 * the scheduler takes another runner for the threads not yet started. A
 * kernel that never synchronises therefore costs two context switches per
 * block, and only threads that wait own a stack.
 *
 * __syncthreads releases when every thread of the block that has not exited
 * has arrived; at the end of the block every thread must have passed the same
 * number of barriers, else the barrier was reached by only part of the block
 * and the kernel fails, naming itself. A warp exchange waits for every lane
 * of its mask; lanes that disagree on the mask or the operation, mask bits of
 * lanes that do not exist, or lanes that exit while the others wait, fail the
 * kernel the same way. */
#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/fiber.hpp>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "block.h"
#include "internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#define CUEMU_STACK_BYTES ((size_t)256 << 10)
/* tell ASan about every stack switch (else it may misjudge fiber stacks) */
#define FIBER_SWITCH_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define FIBER_SWITCH_DONE(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define FIBER_SWITCH_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define FIBER_SWITCH_DONE(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define CUEMU_STACK_BYTES ((size_t)64 << 10)
#endif

namespace cuemu {

uint3 g_thread_idx, g_block_idx;
dim3 g_block_dim, g_grid_dim;

namespace {

enum tstate { T_NEW, T_RUN, T_BAR, T_WARP, T_DONE };

namespace bctx = boost::context;

struct fiber {
  bctx::fiber cont; /* the fiber's suspended state while it is switched out */
  char *mem;      /* guard page + stack */
  size_t bytes;
  bool fresh;     /* gets a new context before the next resume */
  void *asan_fake; /* ASan's fake stack of the fiber while it is switched out */
};

struct kthread {
  uint3 idx;
  int warp, lane;
  tstate state;
  unsigned bars;
  const char *bar_where;
  fiber *f;
};

struct warp_rec {
  unsigned arrived, mask, exist, exited;
  warp_op op;
  int width;
  unsigned long long val[32], res[32];
  int arg[32];
};

struct block_run {
  const kernel_task *k = nullptr;
  int n = 0, exited = 0, bar_waiting = 0;
  std::vector<kthread> th;
  std::vector<warp_rec> warps;
  std::vector<int> unstarted, runnable;
  std::vector<fiber *> idle, all;
  std::vector<bctx::fiber *> abandoned;
  bctx::fiber sched; /* the scheduler's suspended state while a fiber runs */
  fiber *running = nullptr;
  kthread *cur = nullptr;
  std::string error;
  size_t shared_bytes = 0;
  uint64_t rng = 1;
};

/* the device thread is the only one that runs kernels; never destroyed (the
 * process may exit while the device thread is parked in it) */
block_run &R = *new block_run;
unsigned long long g_block_serial = 0;

void set_coords(kthread *t) {
  R.cur = t;
  g_thread_idx = t->idx;
}

fiber *new_fiber() {
  size_t page = 4096, bytes = CUEMU_STACK_BYTES + page;
  char *mem = (char *)mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mem == MAP_FAILED) {
    report("mmap of a %zu-byte fiber stack failed", bytes);
    abort();
  }
  mprotect(mem, page, PROT_NONE); /* stack overflow faults instead of corrupting */
  fiber *f = new fiber;
  f->asan_fake = nullptr;
  f->mem = mem;
  f->bytes = bytes;
  f->fresh = true;
  R.all.push_back(f);
  return f;
}

/* ---- the fiber side ------------------------------------------------------- */
/* the device thread's own stack (learned at the first switch, for ASan) */
const void *g_sched_bottom = nullptr;
size_t g_sched_size = 0;

void to_scheduler(fiber *self) {
  FIBER_SWITCH_START(&self->asan_fake, g_sched_bottom, g_sched_size);
  R.sched = std::move(R.sched).resume();
  FIBER_SWITCH_DONE(self->asan_fake, &g_sched_bottom, &g_sched_size);
}

[[noreturn]] void fail_in_fiber(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail_in_fiber(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (R.error.empty()) R.error = buf;
  fiber *self = R.running;
  self->fresh = true; /* abandoned mid-kernel: restart from scratch */
  to_scheduler(self);
  abort(); /* never resumed */
}

void release_barrier() {
  for (int i = 0; i < R.n; i++)
    if (R.th[i].state == T_BAR) {
      R.th[i].state = T_RUN;
      R.runnable.push_back(i);
    }
  R.bar_waiting = 0;
}

void thread_exit(kthread *t) {
  t->state = T_DONE;
  R.warps[t->warp].exited |= 1u << t->lane;
  R.exited++;
  if (R.bar_waiting > 0 && R.bar_waiting == R.n - R.exited) release_barrier();
}

[[noreturn]] void fiber_main() {
  FIBER_SWITCH_DONE(nullptr, &g_sched_bottom, &g_sched_size);
  for (;;) {
    fiber *self = R.running;
    if (R.unstarted.empty()) {
      R.idle.push_back(self);
      to_scheduler(self);
      continue;
    }
    int i = R.unstarted.back();
    R.unstarted.pop_back();
    kthread *t = &R.th[i];
    t->f = self;
    t->state = T_RUN;
    set_coords(t);
    R.k->body();
    thread_exit(t);
  }
}

void suspend(kthread *t) {
  to_scheduler(t->f);
  set_coords(t);
}

/* ---- the scheduler side ------------------------------------------------- */
/* Our mmap-ed stacks, handed to Boost.Context as they are. */
struct given_stack {
  bctx::stack_context sc;
  bctx::stack_context allocate() { return sc; }
  void deallocate(bctx::stack_context &) noexcept {}
};

void resume(fiber *f) {
  if (f->fresh) {
    if (f->cont) /* abandoned by a failed kernel: keep it, never unwind its stack */
      R.abandoned.push_back(new bctx::fiber(std::move(f->cont)));
    bctx::stack_context sc;
    sc.size = f->bytes - 4096;
    sc.sp = f->mem + f->bytes; /* stacks grow down */
    f->cont = bctx::fiber(std::allocator_arg, bctx::preallocated(sc.sp, sc.size, sc),
                          given_stack{sc}, [](bctx::fiber &&sched) {
                            R.sched = std::move(sched);
                            fiber_main();
                            return std::move(R.sched); /* not reached */
                          });
    f->fresh = false;
  }
  R.running = f;
  void *fake = nullptr;
  FIBER_SWITCH_START(&fake, f->mem + 4096, f->bytes - 4096);
  f->cont = std::move(f->cont).resume();
  FIBER_SWITCH_DONE(fake, nullptr, nullptr);
}

std::string describe_stuck() {
  int bar = 0, warp = 0;
  const char *where = "?";
  std::string w;
  for (int i = 0; i < R.n; i++) {
    if (R.th[i].state == T_BAR) { bar++; where = R.th[i].bar_where; }
    if (R.th[i].state == T_WARP) warp++;
  }
  for (size_t i = 0; i < R.warps.size(); i++) {
    const warp_rec &wr = R.warps[i];
    if (!wr.arrived) continue;
    char buf[160];
    snprintf(buf, sizeof buf, "; warp %zu: lanes 0x%08x of mask 0x%08x arrived at a warp %s", i,
             wr.arrived, wr.mask, wr.op == W_SYNC ? "sync" : "shuffle/vote");
    w += buf;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "deadlock: %d thread(s) wait at __syncthreads (%s), %d at a warp "
           "exchange, %d exited", bar, where, warp, R.exited);
  return buf + w;
}

void run_block() {
  for (;;) {
    if (!R.error.empty()) return;
    if (!R.runnable.empty()) {
      size_t j = rng_next(&R.rng) % R.runnable.size();
      int i = R.runnable[j];
      R.runnable[j] = R.runnable.back();
      R.runnable.pop_back();
      kthread *t = &R.th[i];
      R.cur = t;
      g_thread_idx = t->idx;
      resume(t->f);
    } else if (!R.unstarted.empty()) {
      fiber *f;
      if (!R.idle.empty()) {
        f = R.idle.back();
        R.idle.pop_back();
      } else {
        f = new_fiber();
      }
      resume(f);
    } else if (R.exited < R.n) {
      R.error = describe_stuck();
      return;
    } else {
      break;
    }
  }
  unsigned lo = ~0u, hi = 0;
  const char *where = "?";
  for (int i = 0; i < R.n; i++) {
    if (R.th[i].bars < lo) lo = R.th[i].bars;
    if (R.th[i].bars > hi) { hi = R.th[i].bars; where = R.th[i].bar_where; }
  }
  if (lo != hi) {
    int reached = 0;
    for (int i = 0; i < R.n; i++) reached += R.th[i].bars > lo;
    char buf[256];
    snprintf(buf, sizeof buf, "__syncthreads #%u (%s) was reached by only %d of %d threads; the "
             "others exited before it", lo + 1, where, reached, R.n);
    R.error = buf;
  }
}

} // namespace

/* ---- device-side entry points ---------------------------------------------- */
void syncthreads(const char *where) {
  kthread *t = R.cur;
  t->bars++;
  t->bar_where = where;
  t->state = T_BAR;
  R.bar_waiting++;
  if (R.bar_waiting == R.n - R.exited) release_barrier();
  suspend(t);
}

unsigned lane_mask_active() {
  const warp_rec &w = R.warps[R.cur->warp];
  return w.exist & ~w.exited;
}

unsigned long long warp_exchange(warp_op op, unsigned mask, unsigned long long value, int arg,
                                 int width) {
  kthread *t = R.cur;
  warp_rec &w = R.warps[t->warp];
  unsigned bit = 1u << t->lane;
  if (!(mask & bit))
    fail_in_fiber("warp %d lane %d called a warp exchange with mask 0x%08x, which excludes itself",
                  t->warp, t->lane, mask);
  if (mask & ~w.exist)
    fail_in_fiber("warp %d: mask 0x%08x names lanes that do not exist (block of %d threads)",
                  t->warp, mask, R.n);
  if (width <= 0 || width > 32 || (width & (width - 1)))
    fail_in_fiber("warp exchange width %d is not a power of two <= 32", width);
  if (!w.arrived) {
    w.mask = mask;
    w.op = op;
    w.width = width;
  } else if (w.mask != mask || w.op != op) {
    fail_in_fiber("warp %d: lanes disagree on the warp exchange (mask 0x%08x vs 0x%08x): "
                  "divergent shuffle/vote", t->warp, w.mask, mask);
  }
  if (mask & w.exited)
    fail_in_fiber("warp %d: shuffle/vote with mask 0x%08x but lane %d has exited (partial warp)",
                  t->warp, mask, __builtin_ctz(mask & w.exited));
  w.val[t->lane] = value;
  w.arg[t->lane] = arg;
  w.arrived |= bit;
  if (w.arrived != mask) {
    t->state = T_WARP;
    suspend(t);
    return w.res[t->lane];
  }
  /* last lane: compute every lane's result, then release them */
  unsigned long long any = 0, all = 1, ballot = 0;
  for (int l = 0; l < 32; l++)
    if (mask >> l & 1u) {
      any |= w.val[l] != 0;
      all &= w.val[l] != 0;
      if (w.val[l]) ballot |= 1ull << l;
    }
  for (int l = 0; l < 32; l++) {
    if (!(mask >> l & 1u)) continue;
    int seg = l & ~(width - 1), src = l;
    switch (op) {
    case W_SHFL_IDX: src = seg + (w.arg[l] & (width - 1)); break;
    case W_SHFL_UP: src = l - w.arg[l] >= seg ? l - w.arg[l] : l; break;
    case W_SHFL_DOWN: src = l + w.arg[l] < seg + width ? l + w.arg[l] : l; break;
    case W_SHFL_XOR: src = (l ^ w.arg[l]) < seg + width ? (l ^ w.arg[l]) : l; break;
    default: break;
    }
    if (op == W_ANY) w.res[l] = any;
    else if (op == W_ALL) w.res[l] = all;
    else if (op == W_BALLOT) w.res[l] = ballot;
    else if (op == W_SYNC) w.res[l] = 0;
    else w.res[l] = (mask >> src & 1u) ? w.val[src] : ~0ull; /* inactive source: undefined */
    if (l != t->lane && R.th[t->warp * 32 + l].state == T_WARP) {
      R.th[t->warp * 32 + l].state = T_RUN;
      R.runnable.push_back(t->warp * 32 + l);
    }
  }
  w.arrived = 0;
  return w.res[t->lane];
}

void shared_touch(void *p, size_t bytes, unsigned long long *seen, const char *name) {
  if (*seen == g_block_serial) return;
  *seen = g_block_serial;
  memset(p, 0xff, bytes); /* shared memory starts undefined */
  R.shared_bytes += bytes;
  if (R.shared_bytes > CUEMU_MAX_STATIC_SHARED)
    fail_in_fiber("static shared memory of the block exceeds 48 KiB (%zu bytes with '%s')",
                  R.shared_bytes, name);
}

/* ---- one kernel's blocks (block.h) ------------------------------------------ */
std::vector<uint64_t> kernel_begin(const kernel_task &k) {
  const launch_cfg &c = k.cfg;
  uint64_t nblocks = (uint64_t)c.grid.x * c.grid.y * c.grid.z;
  int n = (int)(c.block.x * c.block.y * c.block.z);
  R.k = &k;
  R.n = n;
  R.th.resize((size_t)n);
  R.warps.resize((size_t)(n + 31) / 32);
  g_block_dim = c.block;
  g_grid_dim = c.grid;
  static uint64_t rng = seed() * 0x2545f4914f6cdd1dull + 7;
  R.rng = rng_next(&rng);
  std::vector<uint64_t> order(nblocks);
  for (uint64_t b = 0; b < nblocks; b++) order[b] = b;
  for (uint64_t b = nblocks; b > 1; b--) std::swap(order[b - 1], order[rng_next(&R.rng) % b]);
  return order;
}

std::string kernel_run_block(uint64_t ob) {
  const launch_cfg &c = R.k->cfg;
  int n = R.n;
  g_block_idx = uint3{(unsigned)(ob % c.grid.x), (unsigned)(ob / c.grid.x % c.grid.y),
                      (unsigned)(ob / ((uint64_t)c.grid.x * c.grid.y))};
  g_block_serial++;
  R.exited = R.bar_waiting = 0;
  R.shared_bytes = 0;
  R.runnable.clear();
  R.unstarted.resize((size_t)n);
  for (int i = 0; i < n; i++) {
    kthread &t = R.th[i];
    t.idx = uint3{(unsigned)(i % c.block.x), (unsigned)(i / c.block.x % c.block.y),
                  (unsigned)(i / (c.block.x * c.block.y))};
    t.warp = i / 32;
    t.lane = i % 32;
    t.state = T_NEW;
    t.bars = 0;
    t.bar_where = "?";
    t.f = nullptr;
    R.unstarted[i] = i;
  }
  for (int i = n; i > 1; i--) std::swap(R.unstarted[i - 1], R.unstarted[rng_next(&R.rng) % i]);
  for (size_t w = 0; w < R.warps.size(); w++) {
    int lanes = n - (int)w * 32 < 32 ? n - (int)w * 32 : 32;
    R.warps[w].arrived = R.warps[w].exited = 0;
    R.warps[w].exist = lanes == 32 ? ~0u : (1u << lanes) - 1;
  }
  run_block();
  std::string err;
  err.swap(R.error);
  return err;
}

void kernel_end(bool failed) {
  if (failed) { /* fibers left waiting are abandoned: restart them from scratch */
    R.idle.clear();
    for (fiber *f : R.all) {
      f->fresh = true;
      R.idle.push_back(f);
    }
  }
  R.k = nullptr; /* a fault from now on is not this kernel's */
}

const kernel_task *kernel_running() { return R.running ? R.k : nullptr; }
bool kernel_stack_overflow(const void *addr) {
  const char *a = (const char *)addr;
  return R.running && a >= R.running->mem && a < R.running->mem + 4096;
}

} // namespace cuemu

/* The CPU backend table, plus memory, streams and events.
 *
 * On the CPU every op runs synchronously on the calling thread (with OpenMP
 * inside), so a stream is a token and an event is a timestamp taken when it is
 * recorded: by then all work "on the stream" is done. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "kernels/cpu/cpu_internal.h"

/* openblas-pthread's cblas.h declares it; declared here so no cblas.h is needed */
extern void openblas_set_num_threads(int num_threads);

struct cddp_stream { int id; };
struct cddp_event { double ms; };

static struct cddp_stream g_streams[3] = {{0}, {1}, {2}};

/* ---- per-thread scratch -------------------------------------------------- */
static _Thread_local struct { void *p; size_t cap; } t_scratch[CPU_SCRATCH_SLOTS];

void *cpu_scratch(int slot, size_t bytes) {
  if (bytes > t_scratch[slot].cap) {
    /* grow by at least 1.5x so a slowly growing request settles quickly */
    size_t cap = bytes + bytes / 2 + 4096;
    free(t_scratch[slot].p);
    void *p = NULL;
    if (posix_memalign(&p, 64, cap) != 0)
      cddp_die(CDDP_EXIT_RUNTIME, "out of host memory: %zu bytes of CPU scratch", cap);
    t_scratch[slot].p = p;
    t_scratch[slot].cap = cap;
  }
  return t_scratch[slot].p;
}

void cpu_scratch_release(void) {
  for (int s = 0; s < CPU_SCRATCH_SLOTS; s++) {
    free(t_scratch[s].p);
    t_scratch[s].p = NULL;
    t_scratch[s].cap = 0;
  }
}

int cpu_max_threads(void) { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

/* ---- ISA detection -------------------------------------------------------------- */
static int detect_isa(void) {
  int isa = CPU_ISA_BASE;
#if defined(__x86_64__) && defined(__GNUC__)
  /* libgcc's CPUID probe also checks that the OS saves the AVX/AVX-512 state */
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) isa = CPU_ISA_AVX2;
  if (isa == CPU_ISA_AVX2 && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq"))
    isa = CPU_ISA_AVX512;
#endif
  const char *cap = getenv("CDDP_CPU_ISA");
  if (cap && *cap) {
    int c = !strcmp(cap, "base") ? CPU_ISA_BASE : !strcmp(cap, "avx2") ? CPU_ISA_AVX2
            : !strcmp(cap, "avx512") ? CPU_ISA_AVX512 : -1;
    if (c < 0) cddp_die(CDDP_EXIT_USAGE, "CDDP_CPU_ISA=%s: expected base, avx2 or avx512", cap);
    if (c < isa) isa = c;
  }
  return isa;
}

static int g_isa = -1;

int cpu_isa(void) {
  int isa = __atomic_load_n(&g_isa, __ATOMIC_RELAXED);
  if (isa < 0) { /* first call: every thread computes the same value */
    isa = detect_isa();
    __atomic_store_n(&g_isa, isa, __ATOMIC_RELAXED);
  }
  return isa;
}

/* ---- memory ------------------------------------------------------------------ */
void *cpu_malloc(size_t bytes) {
  void *p = NULL;
  /* 256-byte alignment, as cudaMalloc gives: arenas bump in 256-byte steps,
   * so every arena pointer is then 256-aligned too */
  if (posix_memalign(&p, 256, bytes ? bytes : 256) != 0)
    cddp_die(CDDP_EXIT_RUNTIME, "out of host memory allocating %zu bytes", bytes);
  return p;
}
void cpu_free(void *p) { free(p); }
void *cpu_host_alloc(size_t bytes) { return cpu_malloc(bytes); }
void cpu_host_free(void *p) { free(p); }

/* "device" and host memory are the same here: the three copies are one */
void cpu_memcpy_h2d(void *dst, const void *src, size_t bytes, cddp_stream *s) {
  (void)s;
  if (bytes && dst != src) memcpy(dst, src, bytes);
}
void cpu_memcpy_d2h(void *dst, const void *src, size_t bytes, cddp_stream *s) {
  cpu_memcpy_h2d(dst, src, bytes, s);
}
void cpu_memcpy_d2d(void *dst, const void *src, size_t bytes, cddp_stream *s) {
  cpu_memcpy_h2d(dst, src, bytes, s);
}
void cpu_memset0(void *dst, size_t bytes, cddp_stream *s) {
  (void)s;
  if (bytes) memset(dst, 0, bytes);
}

/* ---- streams and events ------------------------------------------------------ */
void cpu_stream_sync(cddp_stream *s) { (void)s; }

static double now_ms(void) {
  struct timespec ts;
  CDDP_CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &ts));
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

cddp_event *cpu_event_create(void) {
  cddp_event *e = cddp_xmalloc(sizeof *e, "CPU event");
  e->ms = now_ms();
  return e;
}
void cpu_event_destroy(cddp_event *e) { free(e); }
void cpu_event_record(cddp_event *e, cddp_stream *s) {
  (void)s;
  e->ms = now_ms();
}
void cpu_stream_wait_event(cddp_stream *s, cddp_event *e) { (void)s; (void)e; }
void cpu_event_sync(cddp_event *e) { (void)e; }
float cpu_event_elapsed_ms(cddp_event *start, cddp_event *end) {
  return (float)(end->ms - start->ms);
}

/* omp_set_num_threads sets the calling thread's team size: call it from the
 * thread that runs the ops (the trainer's main thread). */
void cpu_set_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

void cpu_shutdown(void) { cpu_scratch_release(); }

static const cddp_backend g_cpu = {
    .name = "cpu",
    .is_device = 0,
    .compute = &g_streams[0],
    .copy = &g_streams[1],
    .comm = &g_streams[2],
#define CDDP_OP(ret, name, params) .name = cpu_##name,
#include "core/ops_list.h"
};

const cddp_backend *cddp_cpu_backend(void) { return &g_cpu; }

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
static void *cpu_malloc(size_t bytes) {
  void *p = NULL;
  /* 256-byte alignment, as cudaMalloc gives: arenas bump in 256-byte steps,
   * so every arena pointer is then 256-aligned too */
  if (posix_memalign(&p, 256, bytes ? bytes : 256) != 0)
    cddp_die(CDDP_EXIT_RUNTIME, "out of host memory allocating %zu bytes", bytes);
  return p;
}
static void cpu_free(void *p) { free(p); }

static void cpu_memcpy(void *dst, const void *src, size_t bytes, cddp_stream *s) {
  (void)s;
  if (bytes && dst != src) memcpy(dst, src, bytes);
}
static void cpu_memset0(void *dst, size_t bytes, cddp_stream *s) {
  (void)s;
  if (bytes) memset(dst, 0, bytes);
}

/* ---- streams and events ------------------------------------------------------ */
static void cpu_stream_sync(cddp_stream *s) { (void)s; }

static double now_ms(void) {
  struct timespec ts;
  CDDP_CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &ts));
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static cddp_event *cpu_event_create(void) {
  cddp_event *e = cddp_xmalloc(sizeof *e, "CPU event");
  e->ms = now_ms();
  return e;
}
static void cpu_event_destroy(cddp_event *e) { free(e); }
static void cpu_event_record(cddp_event *e, cddp_stream *s) {
  (void)s;
  e->ms = now_ms();
}
static void cpu_stream_wait_event(cddp_stream *s, cddp_event *e) { (void)s; (void)e; }
static void cpu_event_sync(cddp_event *e) { (void)e; }
static float cpu_event_elapsed_ms(cddp_event *start, cddp_event *end) {
  return (float)(end->ms - start->ms);
}

/* omp_set_num_threads sets the calling thread's team size: call it from the
 * thread that runs the ops (the trainer's main thread). */
static void cpu_set_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

static void cpu_shutdown(void) { cpu_scratch_release(); }

static const cddp_backend g_cpu = {
    .name = "cpu",
    .is_device = 0,
    .compute = &g_streams[0],
    .copy = &g_streams[1],
    .comm = &g_streams[2],
    .malloc = cpu_malloc,
    .free = cpu_free,
    .host_alloc = cpu_malloc,
    .host_free = cpu_free,
    .memcpy_h2d = cpu_memcpy,
    .memcpy_d2h = cpu_memcpy,
    .memcpy_d2d = cpu_memcpy,
    .memset0 = cpu_memset0,
    .stream_sync = cpu_stream_sync,
    .event_create = cpu_event_create,
    .event_destroy = cpu_event_destroy,
    .event_record = cpu_event_record,
    .stream_wait_event = cpu_stream_wait_event,
    .event_sync = cpu_event_sync,
    .event_elapsed_ms = cpu_event_elapsed_ms,
    .set_threads = cpu_set_threads,
    .shutdown = cpu_shutdown,
    .gemm = cpu_gemm,
    .bias_grad = cpu_bias_grad,
    .act_bwd = cpu_act_bwd,
    .act_bias_bwd = cpu_act_bias_bwd,
    .act_fwd = cpu_act_fwd,
    .fill = cpu_fill,
    .scale = cpu_scale,
    .axpy = cpu_axpy,
    .add = cpu_add,
    .copy2d = cpu_copy2d,
    .cast = cpu_cast,
    .layernorm_fwd = cpu_layernorm_fwd,
    .layernorm_bwd = cpu_layernorm_bwd,
    .l2norm_fwd = cpu_l2norm_fwd,
    .l2norm_bwd = cpu_l2norm_bwd,
    .softmax_fwd = cpu_softmax_fwd,
    .softmax_bwd = cpu_softmax_bwd,
    .attention_ws_bytes = cpu_attention_ws_bytes,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .bce_logits = cpu_bce_logits,
    .xent = cpu_xent,
    .embbag_fwd = cpu_embbag_fwd,
    .embbag_bwd_ws_bytes = cpu_embbag_bwd_ws_bytes,
    .embbag_bwd = cpu_embbag_bwd,
    .sparse_coalesce_ws_bytes = cpu_sparse_coalesce_ws_bytes,
    .sparse_coalesce = cpu_sparse_coalesce,
    .sparse_to_dense = cpu_sparse_to_dense,
    .dot_interact_fwd = cpu_dot_interact_fwd,
    .dot_interact_bwd = cpu_dot_interact_bwd,
    .patchify = cpu_patchify,
    .vit_tokens_fwd = cpu_vit_tokens_fwd,
    .vit_tokens_bwd = cpu_vit_tokens_bwd,
    .amp_unscale_check = cpu_amp_unscale_check,
    .amp_update_scale = cpu_amp_update_scale,
    .sumsq = cpu_sumsq,
    .clip_by_norm = cpu_clip_by_norm,
    .sgd_update = cpu_sgd_update,
    .adamw_update = cpu_adamw_update,
    .adagrad_update = cpu_adagrad_update,
    .step_advance = cpu_step_advance,
    .sparse_sgd = cpu_sparse_sgd,
    .sparse_adagrad = cpu_sparse_adagrad,
};

const cddp_backend *cddp_cpu_backend(void) { return &g_cpu; }

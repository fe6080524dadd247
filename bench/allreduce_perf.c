/* cddp's all-reduce in the output format of nccl-tests' all_reduce_perf, so
 * that a user can put cddp's figures next to nccl-tests' on the same cluster.
 *
 *   mpirun -np N allreduce_perf [-b 8] [-e 128M] [-f 2] [-w 5] [-n 20] [-c 1]
 *        [-d float|half|bfloat16] [-o sum|avg] [--device cpu|cuda] [--comm mpi|nccl]
 *        [--busy N] [--gap US]
 *
 * Like nccl-tests: sizes from -b to -e bytes, each -f times the previous;
 * -w warm-up and -n timed iterations, posted back to back and then waited;
 * time = mean per iteration (--gap: median) on the slowest rank; algbw = size / time;
 * busbw = algbw * 2(n-1)/n. -c 1 checks each size once more from fresh data
 * (rank r contributes r+1 everywhere) and counts wrong elements (#wrong).
 * cddp's collective is in place, so only the in-place columns exist.
 * --busy N keeps N threads per rank computing while the sizes are timed, as
 * backward does during training: on CPU ranks the communication thread then
 * competes for cores as it does in a real step (the link "under load").
 * --gap US times each iteration alone, after a barrier and US microseconds
 * of silence on the link, as a training step spaces its buckets' all-reduces
 * (a throttled link's token bucket refills, TCP's queues drain), and reports
 * the median iteration; without it iterations are posted back to back and
 * the mean is reported, as nccl-tests does. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/error.h"
#include "ddp/comm.h"
#include "ddp/process_group.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end);
  double mult = *end == 'K' || *end == 'k' ? 1024.0 : *end == 'M' || *end == 'm' ? 1048576.0
                : *end == 'G' || *end == 'g' ? 1073741824.0 : 1.0;
  if (v <= 0 || end == s || (mult == 1.0 && *end) || (mult != 1.0 && end[1]))
    cddp_die(CDDP_EXIT_USAGE, "size '%s': expected bytes with an optional K, M or G suffix", s);
  return (size_t)(v * mult);
}

typedef struct {
  size_t minb, maxb;
  double factor;
  int warmup, iters, check;
  cddp_dtype t;
  cddp_reduce_op op;
  const char *device, *comm;
  int busy;
  long gap_us;
} args;

static void usage_die(const char *what) {
  cddp_die(CDDP_EXIT_USAGE, "%s (usage: allreduce_perf [-b MIN] [-e MAX] [-f FACTOR] [-w WARMUP] "
           "[-n ITERS] [-c 0|1] [-d float|half|bfloat16] [-o sum|avg] [--device cpu|cuda] "
           "[--comm mpi|nccl] [--busy N] [--gap US])", what);
}

static args parse(int argc, char **argv) {
  args a = {.minb = 8, .maxb = 128 << 20, .factor = 2, .warmup = 5, .iters = 20, .check = 1,
            .t = CDDP_F32, .op = CDDP_RED_SUM, .device = "cpu", .comm = NULL};
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage_die("option without a value");
    i++;
    if (!strcmp(k, "-b")) a.minb = parse_size(v);
    else if (!strcmp(k, "-e")) a.maxb = parse_size(v);
    else if (!strcmp(k, "-f")) a.factor = atof(v);
    else if (!strcmp(k, "-w")) a.warmup = atoi(v);
    else if (!strcmp(k, "-n")) a.iters = atoi(v);
    else if (!strcmp(k, "-c")) a.check = atoi(v);
    else if (!strcmp(k, "-d")) {
      a.t = !strcmp(v, "float") ? CDDP_F32 : !strcmp(v, "half") ? CDDP_F16
            : !strcmp(v, "bfloat16") ? CDDP_BF16 : (cddp_dtype)-1;
      if ((int)a.t < 0) usage_die("-d: float, half or bfloat16");
    } else if (!strcmp(k, "-o")) {
      if (strcmp(v, "sum") && strcmp(v, "avg")) usage_die("-o: sum or avg");
      a.op = !strcmp(v, "avg") ? CDDP_RED_AVG : CDDP_RED_SUM;
    } else if (!strcmp(k, "--device")) a.device = v;
    else if (!strcmp(k, "--comm")) a.comm = v;
    else if (!strcmp(k, "--busy")) a.busy = atoi(v);
    else if (!strcmp(k, "--gap")) a.gap_us = atol(v);
    else usage_die("unknown option");
  }
  if (a.busy < 0 || a.busy > 256) usage_die("--busy: 0 to 256 threads");
  if (a.gap_us < 0 || a.gap_us > 10000000) usage_die("--gap: 0 to 10000000 microseconds");
  if (a.factor <= 1 || a.iters < 1 || a.iters > 1000 || a.warmup < 0 || a.warmup > 1000 ||
      a.minb > a.maxb)
    usage_die("need -f > 1, 1 <= -n <= 1000, 0 <= -w <= 1000 and -b <= -e");
  if (!a.comm) a.comm = strcmp(a.device, "cuda") ? "mpi" : "nccl";
  return a;
}

/* Fills n elements of type t on the device with v (through host memory). */
static void fill(const cddp_backend *be, void *dev, void *host, size_t n, cddp_dtype t, float v) {
  for (size_t i = 0; i < n; i++) {
    if (t == CDDP_F32) ((float *)host)[i] = v;
    else if (t == CDDP_F16) ((uint16_t *)host)[i] = cddp_f32_to_f16(v);
    else ((uint16_t *)host)[i] = cddp_f32_to_bf16(v);
  }
  be->memcpy_h2d(dev, host, n * cddp_dtype_size(t), be->compute);
  be->stream_sync(be->compute);
}

static long long count_wrong(const cddp_backend *be, const void *dev, void *host, size_t n,
                             cddp_dtype t, float want) {
  be->memcpy_d2h(host, dev, n * cddp_dtype_size(t), be->compute);
  be->stream_sync(be->compute);
  long long wrong = 0;
  for (size_t i = 0; i < n; i++) {
    float x = t == CDDP_F32   ? ((float *)host)[i]
              : t == CDDP_F16 ? cddp_f16_to_f32(((uint16_t *)host)[i])
                              : cddp_bf16_to_f32(((uint16_t *)host)[i]);
    wrong += fabsf(x - want) > 1e-6f * fabsf(want);
  }
  return wrong;
}

/* --busy: threads that compute until told to stop */
static atomic_int g_stop;
static void *spin(void *arg) {
  volatile float x = 1.0f;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed))
    for (int i = 0; i < 100000; i++) x = x * 0.999999f + 1e-7f;
  return arg;
}

/* k all-reduces posted back to back, then waited (serial: each waited at
 * once, for device buffers under MPI, whose staging pool holds one). */
static void run(cddp_comm *c, const cddp_backend *be, cddp_comm_handle **h, int k, int serial,
                void *buf, size_t n, cddp_dtype t, cddp_reduce_op op) {
  for (int i = 0; i < k; i++) {
    h[i] = cddp_allreduce(c, buf, n, t, op);
    if (serial) cddp_comm_wait(c, h[i]);
  }
  for (int i = 0; i < k && !serial; i++) cddp_comm_wait(c, h[i]);
  be->stream_sync(be->compute); /* NCCL: the host does not wait in cddp_comm_wait */
}

/* --gap: k all-reduces, each after a barrier and gap_us of silence, timed
 * alone into t[0..k-1]; returns this rank's median of the k (a late wake-up
 * of one iteration does not move it, as it would move a mean). */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double run_spaced(cddp_comm *c, const cddp_backend *be, int k, long gap_us, double *t,
                         void *buf, size_t n, cddp_dtype dt, cddp_reduce_op op) {
  for (int i = 0; i < k; i++) {
    cddp_comm_wait(c, cddp_barrier(c));
    struct timespec nap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
    while (nanosleep(&nap, &nap) && errno == EINTR) {}
    double t0 = now_s();
    cddp_comm_wait(c, cddp_allreduce(c, buf, n, dt, op));
    be->stream_sync(be->compute);
    t[i] = now_s() - t0;
  }
  if (k == 0) return 0;
  qsort(t, (size_t)k, sizeof *t, cmp_double);
  return k % 2 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
}

/* The largest value over ranks (all-gather: cddp_allreduce has no fp64/max). */
static double max_over_ranks(cddp_comm *c, double v) {
  int W = cddp_comm_world(c);
  double *all = cddp_xmalloc(sizeof(double) * (size_t)W, "ranks");
  cddp_comm_wait(c, cddp_allgather(c, &v, all, sizeof v));
  for (int r = 0; r < W; r++) v = all[r] > v ? all[r] : v;
  free(all);
  return v;
}

int main(int argc, char **argv) {
  cddp_pg pg;
  cddp_pg_init(&pg, &argc, &argv);
  args a = parse(argc, argv);
  const cddp_backend *be = cddp_backend_get(a.device, pg.local_rank);
  be->set_threads(1);
  cddp_comm *c = cddp_comm_create(&pg, be, a.comm, 600.0);
  int W = pg.world, R = pg.rank;
  size_t es = cddp_dtype_size(a.t);
  size_t maxn = a.maxb / es ? a.maxb / es : 1;
  cddp_comm_reserve(c, maxn * es + 64);
  void *buf = be->malloc(maxn * es), *host = cddp_xmalloc(maxn * es, "host buffer");
  int handles = a.warmup > a.iters ? a.warmup : a.iters;
  cddp_comm_handle **h = cddp_xmalloc(sizeof *h * (size_t)(handles ? handles : 1), "handles");
  double *spaced_t = cddp_xmalloc(sizeof(double) * (size_t)(handles ? handles : 1), "iteration times");
  int serial = be->is_device && !strcmp(a.comm, "mpi");
  const char *tname = a.t == CDDP_F32 ? "float" : a.t == CDDP_F16 ? "half" : "bfloat16";
  const char *opname = a.op == CDDP_RED_AVG ? "avg" : "sum";

  char hostname[256] = "";
  gethostname(hostname, sizeof hostname - 1);
  if (R == 0) {
    printf("# cddp allreduce_perf: nRanks %d minBytes %zu maxBytes %zu step: %g(factor) warmup "
           "iters: %d iters: %d validation: %d device: %s comm: %s busy: %d gap_us: %ld\n#\n",
           W, a.minb, a.maxb, a.factor, a.warmup, a.iters, a.check, be->name, a.comm, a.busy, a.gap_us);
    printf("#  Rank %2d Pid %6d on %10s\n#\n", R, (int)getpid(), hostname);
    printf("# %10s  %12s  %8s  %6s  %6s                in-place\n", "", "", "", "", "");
    printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s\n", "size", "count", "type", "redop",
           "root", "time", "algbw", "busbw", "#wrong");
    printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s\n", "(B)", "(elements)", "", "", "",
           "(us)", "(GB/s)", "(GB/s)", "");
  }
  pthread_t *busy = cddp_xmalloc(sizeof *busy * (size_t)(a.busy ? a.busy : 1), "busy threads");
  for (int i = 0; i < a.busy; i++)
    if (pthread_create(&busy[i], NULL, spin, NULL))
      cddp_die(CDDP_EXIT_RUNTIME, "pthread_create of a --busy thread failed");
  double bw_sum = 0;
  int nsizes = 0;
  long long wrong_total = 0;
  for (double sz = (double)a.minb; sz <= (double)a.maxb * 1.0000001; sz *= a.factor) {
    size_t n = (size_t)sz / es;
    if (n == 0) continue;
    size_t bytes = n * es;
    fill(be, buf, host, n, a.t, 1.0f);
    double mine;
    if (a.gap_us) {
      run_spaced(c, be, a.warmup, a.gap_us, spaced_t, buf, n, a.t, a.op);
      mine = run_spaced(c, be, a.iters, a.gap_us, spaced_t, buf, n, a.t, a.op);
    } else {
      run(c, be, h, a.warmup, serial, buf, n, a.t, a.op);
      cddp_comm_wait(c, cddp_barrier(c));
      be->stream_sync(be->compute);
      double t0 = now_s();
      run(c, be, h, a.iters, serial, buf, n, a.t, a.op);
      mine = (now_s() - t0) / a.iters;
    }
    double t = max_over_ranks(c, mine);
    long long wrong = 0;
    if (a.check) {
      fill(be, buf, host, n, a.t, (float)(R + 1));
      cddp_comm_wait(c, cddp_allreduce(c, buf, n, a.t, a.op));
      float want = (float)W * (float)(W + 1) / 2.0f;
      if (a.op == CDDP_RED_AVG) want /= (float)W;
      wrong = count_wrong(be, buf, host, n, a.t, want);
      double w = max_over_ranks(c, (double)wrong);
      wrong = (long long)w;
    }
    wrong_total += wrong;
    double algbw = (double)bytes / t / 1e9, busbw = algbw * 2.0 * (W - 1) / W;
    bw_sum += busbw;
    nsizes++;
    if (R == 0) {
      char wr[16];
      snprintf(wr, sizeof wr, "%lld", wrong);
      printf("  %10zu  %12zu  %8s  %6s  %6d  %7.2f  %6.2f  %6.2f  %6s\n", bytes, n, tname, opname,
             -1, t * 1e6, algbw, busbw, a.check ? wr : "N/A");
      fflush(stdout);
    }
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < a.busy; i++) pthread_join(busy[i], NULL);
  free(busy);
  if (R == 0) {
    printf("# Out of bounds values : %lld %s\n", wrong_total, wrong_total ? "FAILED" : "OK");
    printf("# Avg bus bandwidth    : %g \n#\n", nsizes ? bw_sum / nsizes : 0.0);
  }
  free(h);
  free(spaced_t);
  free(host);
  be->free(buf);
  cddp_comm_destroy(c);
  cddp_pg_finalize(&pg);
  return wrong_total ? 1 : 0;
}

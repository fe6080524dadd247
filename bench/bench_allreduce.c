/* All-reduce bus bandwidth and overlap of communication with backward.
 *
 *   mpirun -np N bench_allreduce [--max-mb 64] [--layers 16] [--layer-kf 256]
 *                                [--gemm 192] [--bucket-mb 4] [--steps 10] [--comm mpi]
 *
 * Part 0: the one-value host sum the trainer runs at every step boundary to
 * agree on a stop signal (cddp_comm_sum_host of 1 fp64): median and mean.
 * Part 1: cddp_allreduce (fp32, average) of 4 KB .. max-mb, reporting time,
 * algbw = bytes / time and busbw = algbw * 2(n-1)/n (as nccl-tests).
 * Part 2: a fake backward of `layers` layers, each an sgemm (gemm x gemm x
 * gemm) followed by mark_ready of its gradient (layer-kf thousand floats),
 * through the reducer with overlap on and off: backward, communication and
 * exposed communication per step (means over `steps`, after 2 warm-up steps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "ddp/process_group.h"
#include "ddp/reducer.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double opt(int argc, char **argv, const char *name, double def) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name)) return atof(argv[i + 1]);
  return def;
}
static const char *opts(int argc, char **argv, const char *name, const char *def) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name)) return argv[i + 1];
  return def;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void bench_stop_flag(cddp_comm *c) {
  enum { ITERS = 2000 };
  static double t[ITERS];
  double flag = 0, sum = 0;
  for (int i = 0; i < 50; i++) cddp_comm_sum_host(c, &flag, 1, CDDP_F64, NULL);
  for (int i = 0; i < ITERS; i++) {
    double t0 = now_s();
    flag = 0;
    cddp_comm_sum_host(c, &flag, 1, CDDP_F64, NULL);
    t[i] = now_s() - t0;
    sum += t[i];
  }
  qsort(t, ITERS, sizeof *t, cmp_double);
  if (cddp_comm_rank(c) == 0)
    printf("# stop-flag agreement (1 fp64 host sum), %d ranks: median %.1f us, mean %.1f us, "
           "p99 %.1f us over %d calls\n", cddp_comm_world(c), t[ITERS / 2] * 1e6,
           sum / ITERS * 1e6, t[ITERS * 99 / 100] * 1e6, ITERS);
}

static void bench_busbw(cddp_comm *c, const cddp_backend *be, size_t max_bytes) {
  int W = cddp_comm_world(c), R = cddp_comm_rank(c);
  float *x = be->malloc(max_bytes);
  be->fill(x, max_bytes / 4, 1.0f);
  if (R == 0)
    printf("# all-reduce fp32 avg, %d ranks\n%12s %10s %10s %10s\n", W, "bytes", "time_us",
           "algbw_GBs", "busbw_GBs");
  for (size_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
    size_t n = bytes / 4;
    int iters = bytes <= (1 << 20) ? 200 : bytes <= (16 << 20) ? 20 : 5;
    for (int i = 0; i < 3; i++) cddp_comm_wait(c, cddp_allreduce(c, x, n, CDDP_F32, CDDP_RED_AVG));
    cddp_comm_wait(c, cddp_barrier(c));
    double t0 = now_s();
    for (int i = 0; i < iters; i++) cddp_comm_wait(c, cddp_allreduce(c, x, n, CDDP_F32, CDDP_RED_AVG));
    double t = (now_s() - t0) / iters;
    /* the slowest rank defines the collective's time */
    double all[256];
    cddp_comm_wait(c, cddp_allgather(c, &t, all, sizeof t));
    for (int q = 0; q < W && q < 256; q++) t = all[q] > t ? all[q] : t;
    double algbw = (double)bytes / t / 1e9;
    if (R == 0)
      printf("%12zu %10.1f %10.3f %10.3f\n", bytes, t * 1e6, algbw,
             algbw * 2.0 * (W - 1) / (W > 1 ? W : 1));
  }
  be->free(x);
}

static void bench_overlap(cddp_comm *c, const cddp_backend *be, int layers, size_t layer_floats,
                          int g, size_t bucket_bytes, int steps) {
  int R = cddp_comm_rank(c);
  size_t n = (size_t)layers * layer_floats;
  float *grad = be->malloc(n * sizeof(float));
  float *A = be->malloc((size_t)g * g * 4), *B = be->malloc((size_t)g * g * 4),
        *C = be->malloc((size_t)g * g * 4);
  be->fill(A, (size_t)g * g, 0.01f);
  be->fill(B, (size_t)g * g, 0.02f);
  be->fill(grad, n, 0.5f);
  cddp_reducer_param *ps = calloc((size_t)layers, sizeof *ps);
  char (*names)[32] = calloc((size_t)layers, 32);
  for (int i = 0; i < layers; i++) { /* layer 0 is first in forward: last in grad */
    snprintf(names[i], 32, "layers.%d.weight", i);
    ps[i].name = names[i];
    ps[i].offset = (size_t)(layers - 1 - i) * layer_floats;
    ps[i].numel = layer_floats;
  }
  cddp_gemm_args ga = {.m = g, .n = g, .k = g, .alpha = 1, .beta = 0, .ab_type = CDDP_F32,
                       .A = A, .lda = g, .B = B, .ldb = g, .C = C, .ldc = g};
  if (R == 0)
    printf("\n# overlap: %d layers x %zu floats (%.1f MB of gradients), sgemm %d^3 per layer, "
           "buckets %.1f MB (first 1 MB)\n%8s %12s %10s %10s %12s %10s %9s\n",
           layers, layer_floats, n * 4.0 / 1e6, g, bucket_bytes / 1e6, "overlap", "backward_ms",
           "comm_ms", "exposed_ms", "exposed/comm", "step_ms", "buckets");
  for (int overlap = 1; overlap >= 0; overlap--) {
    cddp_reducer_opts o = {.bucket_bytes = bucket_bytes, .first_bucket_bytes = 1 << 20,
                           .overlap = overlap};
    cddp_reducer *r = cddp_reducer_create(c, be, grad, n, ps, layers, &o);
    double bw = 0, cm = 0, ex = 0, st = 0;
    for (int s = 0; s < steps + 2; s++) {
      double t0 = now_s();
      cddp_reducer_begin(r, 1);
      for (int i = layers - 1; i >= 0; i--) {
        be->gemm(&ga);
        cddp_reducer_mark_ready(r, i);
      }
      cddp_reducer_finish(r);
      double t = now_s() - t0;
      const cddp_reducer_stats *x = cddp_reducer_last_stats(r);
      if (s >= 2) bw += x->backward_ms, cm += x->comm_ms, ex += x->exposed_ms, st += 1e3 * t;
    }
    float v[4] = {(float)(bw / steps), (float)(cm / steps), (float)(ex / steps), (float)(st / steps)};
    /* mean over ranks */
    cddp_comm_wait(c, cddp_allreduce(c, v, 4, CDDP_F32, CDDP_RED_AVG));
    if (R == 0)
      printf("%8s %12.2f %10.2f %10.2f %12.3f %10.2f %9d\n", overlap ? "on" : "off", v[0], v[1],
             v[2], v[2] / v[1], v[3], cddp_reducer_last_stats(r)->buckets);
    cddp_reducer_destroy(r);
  }
  be->free(grad), be->free(A), be->free(B), be->free(C);
  free(ps), free(names);
}

int main(int argc, char **argv) {
  cddp_pg pg;
  cddp_pg_init(&pg, &argc, &argv);
  const cddp_backend *be = cddp_cpu_backend();
  be->set_threads(1);
  cddp_comm *c = cddp_comm_create(&pg, be, opts(argc, argv, "--comm", "mpi"), 120.0);
  bench_stop_flag(c);
  bench_busbw(c, be, (size_t)(opt(argc, argv, "--max-mb", 64) * (1 << 20)));
  bench_overlap(c, be, (int)opt(argc, argv, "--layers", 16),
                (size_t)(opt(argc, argv, "--layer-kf", 256) * 1000), (int)opt(argc, argv, "--gemm", 192),
                (size_t)(opt(argc, argv, "--bucket-mb", 4) * (1 << 20)), (int)opt(argc, argv, "--steps", 10));
  cddp_comm_destroy(c);
  cddp_pg_finalize(&pg);
  return 0;
}

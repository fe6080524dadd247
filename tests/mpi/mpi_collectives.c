/* Every collective of the MPI communication backend on random data, checked
 * against a serial reference computed from the regenerated inputs of all
 * ranks, and checked to give bit-identical results on every rank. Runs on 1
 * (no mpirun), 2 and 4 ranks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "core/log.h"
#include "ddp/process_group.h"
#include "mpi/mpi_test_util.h"

static cddp_pg g_pg;
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static cddp_comm *g_c;
static int R, W;

/* rank r's input for a test with seed `seed` */
static void gen(float *x, size_t n, uint64_t seed, int r) {
  uint64_t s = seed * 1000003u + (uint64_t)r * 7919u + 1;
  for (size_t i = 0; i < n; i++) x[i] = tu_uniform(&s) * (1.0f + (float)(i % 7));
}

static void check_allreduce(cddp_dtype t, cddp_reduce_op op, size_t n, uint64_t seed) {
  float *x = malloc(n * sizeof(float) + 4), *other = malloc(n * sizeof(float) + 4);
  double *ref = calloc(n + 1, sizeof(double)), *absum = calloc(n + 1, sizeof(double));
  uint16_t *h = malloc(n * 2 + 2);
  for (int r = 0; r < W; r++) {
    gen(other, n, seed, r);
    for (size_t i = 0; i < n; i++) {
      double v = cddp_round_to(t, other[i]); /* what the wire holds */
      ref[i] += v;
      absum[i] += fabs(v);
    }
  }
  gen(x, n, seed, R);
  void *buf = x;
  if (t != CDDP_F32) {
    for (size_t i = 0; i < n; i++)
      h[i] = t == CDDP_F16 ? cddp_f32_to_f16(x[i]) : cddp_f32_to_bf16(x[i]);
    buf = h;
  }
  cddp_comm_wait(g_c, cddp_allreduce(g_c, buf, n, t, op));
  /* relative rounding of one add/scale in the wire type, W-1 adds + 1 scale */
  double eps = t == CDDP_F32 ? 0x1p-24 : t == CDDP_F16 ? 0x1p-11 : 0x1p-8;
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double got = t == CDDP_F32 ? x[i] : t == CDDP_F16 ? cddp_f16_to_f32(h[i]) : cddp_bf16_to_f32(h[i]);
    double want = op == CDDP_RED_AVG ? ref[i] / W : ref[i];
    double tol = (W + 1) * eps * (op == CDDP_RED_AVG ? absum[i] / W : absum[i]) + 1e-30;
    double e = fabs(got - want) / tol;
    if (e > worst) worst = e;
  }
  int same = tu_same(g_c, buf, n * cddp_dtype_size(t));
  double w = tu_max(g_c, worst);
  if (w > 1.0)
    fprintf(stderr, "allreduce %s %s n=%zu: error %.3g x tolerance\n", cddp_dtype_name(t),
            op == CDDP_RED_AVG ? "avg" : "sum", n, w);
  assert_true(w <= 1.0);
  assert_true(same);
  free(x), free(other), free(ref), free(absum), free(h);
}

static void test_allreduce_f32(void **st) {
  size_t sizes[] = {1, 7, 1000, 262147};
  for (int k = 0; k < 4; k++) {
    check_allreduce(CDDP_F32, CDDP_RED_SUM, sizes[k], 10 + k);
    check_allreduce(CDDP_F32, CDDP_RED_AVG, sizes[k], 20 + k);
  }
}
static void test_allreduce_half(void **st) {
  size_t sizes[] = {1, 13, 4099, 100003};
  for (int k = 0; k < 4; k++) {
    check_allreduce(CDDP_F16, CDDP_RED_SUM, sizes[k], 30 + k);
    check_allreduce(CDDP_F16, CDDP_RED_AVG, sizes[k], 40 + k);
    check_allreduce(CDDP_BF16, CDDP_RED_SUM, sizes[k], 50 + k);
    check_allreduce(CDDP_BF16, CDDP_RED_AVG, sizes[k], 60 + k);
  }
}

static void test_broadcast(void **st) {
  size_t n = 50001;
  float *x = malloc(n * 4), *want = malloc(n * 4);
  for (int root = 0; root < W; root++) {
    gen(x, n, 70 + root, R);
    gen(want, n, 70 + root, root);
    cddp_comm_wait(g_c, cddp_broadcast(g_c, x, n * 4, root));
    assert_true(tu_all(g_c, memcmp(x, want, n * 4) == 0));
  }
  free(x), free(want);
}

static void test_allgather(void **st) {
  size_t n = 3001;
  float *x = malloc(n * 4), *all = malloc(n * 4 * W), *want = malloc(n * 4);
  gen(x, n, 80, R);
  cddp_comm_wait(g_c, cddp_allgather(g_c, x, all, n * 4));
  int ok = 1;
  for (int r = 0; r < W; r++) {
    gen(want, n, 80, r);
    ok &= memcmp(all + r * n, want, n * 4) == 0;
  }
  /* in place: the send block is already inside recv */
  gen(all + R * n, n, 81, R);
  cddp_comm_wait(g_c, cddp_allgather(g_c, all + R * n, all, n * 4));
  for (int r = 0; r < W; r++) {
    gen(want, n, 81, r);
    ok &= memcmp(all + r * n, want, n * 4) == 0;
  }
  assert_true(tu_all(g_c, ok));
  free(x), free(all), free(want);
}

/* Host statistics: exact f64 and u64 sums (values that an fp32 sum would
 * round), and the host all-gather of small state. */
static void test_host_stats(void **st) {
  double d[3] = {1e16 + R, 0.125 * (R + 1), -3.0};
  uint64_t u[2] = {((uint64_t)1 << 60) + (uint64_t)R, 7};
  cddp_comm_sum_host(g_c, d, 3, CDDP_F64, NULL);
  cddp_comm_sum_host(g_c, u, 2, CDDP_U64, NULL);
  int ok = d[0] == 1e16 * W + (double)W * (W - 1) / 2 && d[1] == 0.125 * W * (W + 1) / 2 &&
           d[2] == -3.0 * W;
  ok &= u[0] == ((uint64_t)W << 60) + (uint64_t)(W * (W - 1) / 2) && u[1] == 7u * (uint64_t)W;
  char mine[16], all[16 * 64];
  snprintf(mine, sizeof mine, "rank%d", R);
  cddp_comm_allgather_host(g_c, mine, all, 16);
  for (int r = 0; r < W; r++) {
    char want[16];
    snprintf(want, sizeof want, "rank%d", r);
    ok &= !strcmp(all + 16 * r, want);
  }
  assert_true(tu_all(g_c, ok));
}

static void test_allgatherv(void **st) {
  /* rank r sends (r * 977) % 1500 floats: rank 0 sends none; gaps between blocks */
  size_t rb[64], dp[64], total = 0;
  for (int r = 0; r < W; r++) {
    rb[r] = ((size_t)r * 977 % 1500) * 4;
    dp[r] = total + 8;
    total = dp[r] + rb[r];
  }
  unsigned char *recv = malloc(total + 8);
  memset(recv, 0xAB, total + 8);
  float *x = malloc(rb[R] + 4), *want = malloc(1500 * 4);
  gen(x, rb[R] / 4, 90, R);
  cddp_comm_wait(g_c, cddp_allgatherv(g_c, x, rb[R], recv, rb, dp));
  int ok = 1;
  for (int r = 0; r < W; r++) {
    gen(want, rb[r] / 4, 90, r);
    ok &= memcmp(recv + dp[r], want, rb[r]) == 0;
    ok &= recv[dp[r] - 1] == 0xAB; /* the gaps are untouched */
  }
  assert_true(tu_all(g_c, ok));
  free(recv), free(x), free(want);
}

static void test_alltoall(void **st) {
  size_t n = 777;
  float *send = malloc(n * 4 * W), *recv = malloc(n * 4 * W), *want = malloc(n * 4 * W);
  for (int d = 0; d < W; d++) gen(send + d * n, n, 100 + d, R); /* block for rank d */
  cddp_comm_wait(g_c, cddp_alltoall(g_c, send, recv, n * 4));
  int ok = 1;
  for (int s = 0; s < W; s++) {
    gen(want, n, 100 + R, s); /* what rank s sent to me */
    ok &= memcmp(recv + s * n, want, n * 4) == 0;
  }
  assert_true(tu_all(g_c, ok));
  free(send), free(recv), free(want);
}

/* Uneven blocks, some empty, at scattered displacements: the block from rank
 * s to rank d has 13 * ((3s + 5d) % 4) floats (zero for some pairs). */
static size_t a2av_n(int s, int d) { return 13u * (size_t)((3 * s + 5 * d) % 4); }

static void test_alltoallv(void **st) {
  size_t sb[64], sd[64], rb[64], rd[64], stot = 0, rtot = 0;
  for (int r = 0; r < W; r++) {
    sb[r] = a2av_n(R, r) * 4;
    rb[r] = a2av_n(r, R) * 4;
  }
  for (int r = W - 1; r >= 0; r--) { /* reverse order with gaps: displacements are honoured */
    sd[r] = stot, stot += sb[r] + 8;
    rd[r] = rtot, rtot += rb[r] + 12;
  }
  char *send = calloc(stot + 1, 1), *recv = calloc(rtot + 1, 1);
  float *want = malloc(64 * 4);
  for (int d = 0; d < W; d++) gen((float *)(send + sd[d]), a2av_n(R, d), 300 + d, R);
  cddp_comm_wait(g_c, cddp_alltoallv(g_c, send, sb, sd, recv, rb, rd));
  int ok = 1;
  for (int s = 0; s < W; s++) {
    gen(want, a2av_n(s, R), 300 + R, s); /* what rank s sent to me */
    ok &= memcmp(recv + rd[s], want, rb[s]) == 0;
  }
  assert_true(tu_all(g_c, ok));
  free(send), free(recv), free(want);
}

/* Many collectives in flight at once, waited for in reverse order. */
static void test_many_in_flight(void **st) {
  enum { K = 64, N = 513 };
  static float x[K][N];
  cddp_comm_handle *h[K];
  for (int k = 0; k < K; k++) {
    for (int i = 0; i < N; i++) x[k][i] = (float)(R + 1) * (float)(k + i);
    h[k] = k % 5 == 4 ? cddp_barrier(g_c) : cddp_allreduce(g_c, x[k], N, CDDP_F32, CDDP_RED_SUM);
  }
  for (int k = K - 1; k >= 0; k--) cddp_comm_wait(g_c, h[k]);
  float tri = (float)W * (float)(W + 1) / 2;
  int ok = 1;
  for (int k = 0; k < K; k++)
    if (k % 5 != 4)
      for (int i = 0; i < N; i++) ok &= x[k][i] == tri * (float)(k + i);
  assert_true(tu_all(g_c, ok));
}

static void test_timed_wait(void **st) {
  float v = 1;
  double t0 = now_s(), done = 0;
  cddp_comm_wait_timed(g_c, cddp_allreduce(g_c, &v, 1, CDDP_F32, CDDP_RED_SUM), &done);
  assert_true(done >= t0 && done <= now_s());
  assert_true(v == (float)W);
}

int main(int argc, char **argv) {
  cddp_pg_init(&g_pg, &argc, &argv);
  R = g_pg.rank;
  W = g_pg.world;
  if (W > 64) return 77;
  cddp_log_set_quiet(1);
  g_c = cddp_comm_create(&g_pg, cddp_cpu_backend(), "mpi", 30.0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allreduce_f32), cmocka_unit_test(test_allreduce_half),
      cmocka_unit_test(test_broadcast),     cmocka_unit_test(test_allgather),
      cmocka_unit_test(test_allgatherv),    cmocka_unit_test(test_alltoall),
      cmocka_unit_test(test_alltoallv),
      cmocka_unit_test(test_many_in_flight), cmocka_unit_test(test_timed_wait),
      cmocka_unit_test(test_host_stats),
  };
  int fails = cmocka_run_group_tests(tests, NULL, NULL);
  cddp_comm_destroy(g_c);
  cddp_pg_finalize(&g_pg);
  return fails ? 1 : 0;
}

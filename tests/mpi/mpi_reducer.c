/* The gradient reducer on a synthetic "model": parameters of random sizes
 * laid out in reverse registration order (as params.h does), gradients
 * filled per rank with known values during a fake backward that marks them
 * ready in reverse order between bursts of fake compute, plus two sparse
 * embedding tables. After finish() every dense gradient must equal the
 * average over ranks, every sparse result the serial coalesced average, and
 * all ranks must hold the same bytes. Variants: default buckets, many tiny
 * buckets, one huge bucket, no overlap, gradient accumulation, fp16/bf16
 * compression. Also the start-up checks (same description; broadcast). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/log.h"
#include "ddp/process_group.h"
#include "ddp/reducer.h"
#include "mpi/mpi_test_util.h"

enum { P = 31, NSP = 2, ID_RANGE = 150 };
static const int sp_id[NSP] = {4, 17}, sp_dim[NSP] = {8, 3}, sp_cap[NSP] = {40, 25};

static cddp_pg g_pg;
static cddp_comm *g_c;
static const cddp_backend *g_be;
static int R, W;
static cddp_reducer_param g_params[P];
static char g_names[P][48];
static size_t g_n_dense;
static float *g_grad;
static int32_t *g_ids[NSP];
static float *g_rows[NSP];

static void setup_model(void) {
  uint64_t s = 12345;
  size_t numel[P];
  for (int i = 0; i < P; i++) {
    int kind = (int)(tu_splitmix(&s) % 4);
    numel[i] = kind == 0 ? 1 + tu_splitmix(&s) % 8 : kind == 3 ? 20000 + tu_splitmix(&s) % 60000
                                                              : 100 + tu_splitmix(&s) % 3000;
  }
  size_t off = 0;
  for (int i = P - 1; i >= 0; i--) { /* reverse registration order */
    cddp_reducer_param *p = &g_params[i];
    snprintf(g_names[i], sizeof g_names[i], "layers.%d.weight", i);
    p->name = g_names[i];
    int k = i == sp_id[0] ? 0 : i == sp_id[1] ? 1 : -1;
    if (k >= 0) {
      p->sparse = 1;
      p->dim = sp_dim[k];
      p->cap = sp_cap[k];
      g_ids[k] = g_be->malloc(sizeof(int32_t) * sp_cap[k]);
      g_rows[k] = g_be->malloc(sizeof(float) * sp_cap[k] * sp_dim[k]);
      p->ids = g_ids[k];
      p->rows = g_rows[k];
      continue;
    }
    p->offset = off;
    p->numel = numel[i];
    off += numel[i];
  }
  g_n_dense = off;
  g_grad = g_be->malloc(off * sizeof(float));
}

static uint64_t seed_of(int r, int i, int micro, int step) {
  return (uint64_t)r * 1000003u + (uint64_t)i * 7919u + (uint64_t)micro * 104729u +
         (uint64_t)step * 15485863u + 1;
}
static float dense_val(uint64_t *s, size_t j) { return tu_uniform(s) * (1.0f + (float)(j % 5)); }

/* rank r's sparse gradient of table k: sorted unique ids, -1 padded */
static int sparse_grad(int r, int k, int micro, int step, int32_t *ids, float *rows) {
  uint64_t s = seed_of(r, 1000 + k, micro, step);
  int n = 0, want = 1 + (int)(tu_splitmix(&s) % (uint64_t)sp_cap[k]);
  for (int id = 0; id < ID_RANGE && n < want; id++)
    if (tu_splitmix(&s) % 3 == 0) ids[n++] = id;
  for (int i = 0; i < sp_cap[k] * sp_dim[k]; i++) rows[i] = i < n * sp_dim[k] ? tu_uniform(&s) : 0;
  for (int i = n; i < sp_cap[k]; i++) ids[i] = -1;
  return n;
}

static volatile double g_sink;
static void fake_compute(int units) {
  double a = 0;
  for (int i = 0; i < units * 2000; i++) a += sqrt((double)i);
  g_sink = a;
}

/* One micro-step's backward on this rank: gradients ACCUMULATE (+=). */
static void backward(cddp_reducer *r, int micro, int step) {
  for (int i = P - 1; i >= 0; i--) {
    const cddp_reducer_param *p = &g_params[i];
    if (p->sparse) {
      int k = i == sp_id[0] ? 0 : 1;
      sparse_grad(R, k, micro, step, g_ids[k], g_rows[k]);
    } else {
      uint64_t s = seed_of(R, i, micro, step);
      for (size_t j = 0; j < p->numel; j++) g_grad[p->offset + j] += dense_val(&s, j);
    }
    fake_compute(1 + (int)(p->numel / 5000));
    cddp_reducer_mark_ready(r, i);
  }
}

/* Checks the reduced gradients against the serial average; returns worst error / tolerance. */
static double check_dense(int micros, int step, double eps) {
  double worst = 0;
  float *v = malloc(sizeof(float) * 80000);
  double *sum = malloc(sizeof(double) * 80000), *abs_ = malloc(sizeof(double) * 80000);
  for (int i = 0; i < P; i++) {
    const cddp_reducer_param *p = &g_params[i];
    if (p->sparse) continue;
    for (size_t j = 0; j < p->numel; j++) sum[j] = abs_[j] = 0;
    for (int r = 0; r < W; r++) {
      for (size_t j = 0; j < p->numel; j++) v[j] = 0;
      for (int m = 0; m < micros; m++) {
        uint64_t s = seed_of(r, i, m, step);
        for (size_t j = 0; j < p->numel; j++) v[j] += dense_val(&s, j); /* as backward does */
      }
      for (size_t j = 0; j < p->numel; j++) {
        sum[j] += v[j];
        abs_[j] += fabs(v[j]);
      }
    }
    for (size_t j = 0; j < p->numel; j++) {
      /* plus fp16's subnormal spacing (2^-24) for tiny values */
      double tol = (W + 2) * eps * abs_[j] / W + (eps == 0x1p-11 ? (W + 2) * 0x1p-24 : 1e-30);
      double e = fabs(g_grad[p->offset + j] - sum[j] / W) / tol;
      if (e > worst) worst = e;
    }
  }
  free(v), free(sum), free(abs_);
  return worst;
}

/* Sparse results against a serial coalesce of all ranks' micro-steps. */
static int check_sparse(cddp_reducer *r, int micros, int step) {
  int ok = 1;
  for (int k = 0; k < NSP; k++) {
    int dim = sp_dim[k], cap = sp_cap[k];
    double *ref = calloc((size_t)ID_RANGE * dim, sizeof(double));
    char *hit = calloc(ID_RANGE, 1);
    int32_t *ids = malloc(sizeof(int32_t) * cap);
    float *rows = malloc(sizeof(float) * cap * dim);
    for (int q = 0; q < W; q++)
      for (int m = 0; m < micros; m++) {
        int n = sparse_grad(q, k, m, step, ids, rows);
        for (int a = 0; a < n; a++) {
          hit[ids[a]] = 1;
          for (int d = 0; d < dim; d++) ref[ids[a] * dim + d] += rows[a * dim + d];
        }
      }
    const int32_t *rid;
    const float *rrow;
    int n;
    cddp_reducer_sparse_result(r, sp_id[k], &rid, &rrow, &n);
    int micro_slots = micros > 1 ? micros : 1;
    ok &= n == micro_slots * cap * W;
    int a = 0;
    for (int id = 0; id < ID_RANGE; id++) {
      if (!hit[id]) continue;
      ok &= a < n && rid[a] == id;
      for (int d = 0; d < dim && a < n; d++)
        ok &= fabs(rrow[a * dim + d] - ref[id * dim + d] / W) <= 1e-6 * (1 + fabs(ref[id * dim + d]));
      a++;
    }
    for (; a < n; a++) ok &= rid[a] == -1;
    ok &= tu_same(g_c, rid, sizeof(int32_t) * n) && tu_same(g_c, rrow, sizeof(float) * n * dim);
    free(ref), free(hit), free(ids), free(rows);
  }
  return ok;
}

/* Bucket layout: contiguous, whole parameters, sizes as the limits say. */
static int check_layout(cddp_reducer *r, const cddp_reducer_opts *o) {
  size_t first = o->first_bucket_bytes ? o->first_bucket_bytes : 1 << 20;
  size_t rest = o->bucket_bytes ? o->bucket_bytes : 25 << 20;
  size_t next = 0;
  int ok = 1, total = 0;
  for (int b = 0; b < cddp_reducer_n_buckets(r); b++) {
    size_t off, n;
    int np;
    cddp_reducer_bucket(r, b, &off, &n, &np);
    ok &= off == next && np >= 1;
    next = off + n;
    total += np;
    /* every bucket but the last reaches its limit; without its last param it would not */
    size_t lim = b == 0 ? first : rest;
    if (b + 1 < cddp_reducer_n_buckets(r)) ok &= n * 4 >= lim;
    int boundary = 0;
    for (int i = 0; i < P; i++)
      if (!g_params[i].sparse && g_params[i].offset + g_params[i].numel == next) boundary = 1;
    ok &= boundary;
  }
  ok &= next == g_n_dense && total == P - NSP;
  return ok;
}

static void run_config(const cddp_reducer_opts *o, int micros, double eps, int want_buckets_min,
                       int want_buckets_max) {
  cddp_reducer *r = cddp_reducer_create(g_c, g_be, g_grad, g_n_dense, g_params, P, o);
  int nb = cddp_reducer_n_buckets(r);
  assert_true(nb >= want_buckets_min && nb <= want_buckets_max);
  assert_true(check_layout(r, o));
  for (int step = 0; step < 2; step++) {
    g_be->memset0(g_grad, g_n_dense * sizeof(float), g_be->compute); /* the trainer's zero_grad */
    for (int m = 0; m < micros; m++) {
      cddp_reducer_begin(r, m == micros - 1);
      backward(r, m, step);
      cddp_reducer_finish(r);
    }
    const cddp_reducer_stats *st = cddp_reducer_last_stats(r);
    size_t sp_bytes = 0;
    for (int k = 0; k < NSP; k++)
      sp_bytes += (size_t)(micros > 1 ? micros : 1) * sp_cap[k] * (4 + 4 * sp_dim[k]);
    size_t wire = o->compress == CDDP_F32 ? 4 : 2;
    assert_true(st->buckets == nb);
    assert_true(st->bytes_sent == g_n_dense * wire + sp_bytes);
    assert_true(st->backward_ms > 0 && st->comm_ms >= 0 && st->exposed_ms >= 0);
    double w = tu_max(g_c, check_dense(micros, step, eps));
    if (w > 1) fprintf(stderr, "dense error %.3g x tolerance\n", w);
    assert_true(w <= 1.0);
    assert_true(tu_same(g_c, g_grad, g_n_dense * sizeof(float)));
    assert_true(tu_all(g_c, check_sparse(r, micros, step)));
  }
  cddp_reducer_destroy(r);
}

static const double F32_EPS = 0x1p-24, F16_EPS = 0x1p-11, BF16_EPS = 0x1p-8;

static void test_default_buckets(void **st) {
  cddp_reducer_opts o = {.overlap = 1};
  run_config(&o, 1, F32_EPS, 2, 3);
}
static void test_tiny_buckets(void **st) {
  cddp_reducer_opts o = {.bucket_bytes = 256, .first_bucket_bytes = 16, .overlap = 1};
  run_config(&o, 1, F32_EPS, 10, P - NSP);
}
static void test_one_huge_bucket(void **st) {
  cddp_reducer_opts o = {.bucket_bytes = (size_t)1 << 30, .first_bucket_bytes = (size_t)1 << 30,
                         .overlap = 1};
  run_config(&o, 1, F32_EPS, 1, 1);
}
static void test_no_overlap(void **st) {
  cddp_reducer_opts o = {.bucket_bytes = 40000, .first_bucket_bytes = 4000, .overlap = 0};
  run_config(&o, 1, F32_EPS, 4, P);
}
static void test_grad_accum(void **st) {
  cddp_reducer_opts o = {.bucket_bytes = 40000, .first_bucket_bytes = 4000, .overlap = 1,
                         .accum_steps = 2};
  run_config(&o, 2, F32_EPS, 4, P);
  o.overlap = 0;
  run_config(&o, 2, F32_EPS, 4, P);
}
static void test_compress(void **st) {
  cddp_reducer_opts o = {.bucket_bytes = 40000, .first_bucket_bytes = 4000, .overlap = 1,
                         .compress = CDDP_F16};
  run_config(&o, 1, F16_EPS, 4, P);
  o.compress = CDDP_BF16;
  o.accum_steps = 2;
  run_config(&o, 2, BF16_EPS, 4, P);
}

static void test_startup_checks(void **st) {
  cddp_ddp_check_same(g_c, "model vit\nparam a [3,4] fp32\nparam b [4] fp32\nschema cddp.image.v1\n");
  size_t n = 10007;
  float *m = g_be->malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
  uint64_t s = 99 + (uint64_t)R, s0 = 99;
  for (size_t i = 0; i < n; i++) m[i] = tu_uniform(&s), want[i] = tu_uniform(&s0);
  cddp_ddp_broadcast_params(g_c, m, n);
  assert_true(tu_all(g_c, memcmp(m, want, n * sizeof(float)) == 0));
  g_be->free(m);
  free(want);
}

int main(int argc, char **argv) {
  cddp_pg_init(&g_pg, &argc, &argv);
  R = g_pg.rank;
  W = g_pg.world;
  if (W > 64) return 77;
  cddp_log_set_quiet(1);
  g_be = cddp_cpu_backend();
  g_be->set_threads(1);
  g_c = cddp_comm_create(&g_pg, g_be, "mpi", 30.0);
  setup_model();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_buckets), cmocka_unit_test(test_tiny_buckets),
      cmocka_unit_test(test_one_huge_bucket), cmocka_unit_test(test_no_overlap),
      cmocka_unit_test(test_grad_accum),      cmocka_unit_test(test_compress),
      cmocka_unit_test(test_startup_checks),
  };
  int fails = cmocka_run_group_tests(tests, NULL, NULL);
  cddp_comm_destroy(g_c);
  cddp_pg_finalize(&g_pg);
  return fails ? 1 : 0;
}

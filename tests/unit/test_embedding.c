/* Embedding bags (sum/mean, -1 padding, ids_ld, empty bags, ldo), sparse
 * backward (sorted unique ids, -1 padding, zero rows), coalescing
 * (determinism across runs and thread counts), sparse_to_dense, segmented
 * bags (forward sums, backward copies each segment's gradient to its ids). */
#include "test_util.h"

static const cddp_backend *be;

typedef struct { int rows, dim, nbags, bag, ids_ld, ldo, mean; int32_t *ids; } bagcfg;

static int32_t *make_ids(int nbags, int bag, int ids_ld, int rows) {
  int32_t *ids = malloc((size_t)nbags * ids_ld * 4);
  for (int b = 0; b < nbags; b++)
    for (int j = 0; j < ids_ld; j++) {
      int32_t v = tu_int(rows);
      if (j >= bag) v = 777777; /* outside the bag: must never be read */
      else if (b % 4 == 2) v = -1; /* empty bag */
      else if (tu_int(4) == 0) v = -1;
      ids[(size_t)b * ids_ld + j] = v;
    }
  return ids;
}

static void bag_case(int rows, int dim, int nbags, int bag, int ids_ld, int ldo, int mean,
                     uint64_t seed) {
  tu_seed(seed);
  float *table = tu_rand((size_t)rows * dim, -1, 1);
  int32_t *ids = make_ids(nbags, bag, ids_ld, rows);
  float *out = tu_rand((size_t)nbags * ldo, -1, 1), *out0 = tu_copy(out, (size_t)nbags * ldo);
  double *ref = malloc((size_t)nbags * dim * 8);
  double *rdense = calloc((size_t)rows * dim, 8);
  float *dout = tu_rand((size_t)nbags * ldo, -1, 1);
  for (int b = 0; b < nbags; b++) {
    int cnt = 0;
    for (int d = 0; d < dim; d++) ref[(size_t)b * dim + d] = 0;
    for (int j = 0; j < bag; j++) {
      int32_t id = ids[(size_t)b * ids_ld + j];
      if (id < 0) continue;
      cnt++;
      for (int d = 0; d < dim; d++) ref[(size_t)b * dim + d] += table[(size_t)id * dim + d];
    }
    double w = mean && cnt ? 1.0 / cnt : 1.0;
    for (int d = 0; d < dim; d++) ref[(size_t)b * dim + d] *= w;
    for (int j = 0; j < bag; j++) {
      int32_t id = ids[(size_t)b * ids_ld + j];
      if (id < 0) continue;
      for (int d = 0; d < dim; d++) rdense[(size_t)id * dim + d] += w * dout[(size_t)b * ldo + d];
    }
  }
  be->embbag_fwd(table, dim, ids, ids_ld, nbags, bag, mean, out, ldo);
  for (int b = 0; b < nbags; b++) {
    tu_close("embbag out", out + (size_t)b * ldo, ref + (size_t)b * dim, dim, 1e-6, 1e-6);
    for (int d = dim; d < ldo; d++) assert_true(out[(size_t)b * ldo + d] == out0[(size_t)b * ldo + d]);
  }
  /* backward */
  int cap = nbags * bag;
  int32_t *oid = malloc((size_t)cap * 4);
  float *orow = tu_rand((size_t)cap * dim, -1, 1);
  void *ws = malloc(be->embbag_bwd_ws_bytes(cap, dim));
  be->embbag_bwd(ids, ids_ld, nbags, bag, mean, dout, ldo, dim, oid, orow, ws);
  int u = 0;
  while (u < cap && oid[u] >= 0) u++;
  for (int i = 1; i < u; i++) assert_true(oid[i] > oid[i - 1]); /* sorted unique */
  for (int i = u; i < cap; i++) {
    assert_int_equal(oid[i], -1);
    for (int d = 0; d < dim; d++) assert_true(orow[(size_t)i * dim + d] == 0.0f);
  }
  /* every touched row is present, untouched rows absent */
  int touched = 0;
  char *used = calloc(rows, 1);
  for (int b = 0; b < nbags; b++)
    for (int j = 0; j < bag; j++)
      if (ids[(size_t)b * ids_ld + j] >= 0) used[ids[(size_t)b * ids_ld + j]] = 1;
  for (int r = 0; r < rows; r++) touched += used[r];
  free(used);
  assert_int_equal(u, touched);
  for (int i = 0; i < u; i++)
    tu_close("embbag_bwd rows", orow + (size_t)i * dim, rdense + (size_t)oid[i] * dim, dim, 1e-5, 1e-5);
  /* scattering the sparse gradient gives the dense one */
  float *dense = calloc((size_t)rows * dim, 4);
  be->sparse_to_dense(oid, orow, cap, dim, dense);
  tu_close("sparse_to_dense", dense, rdense, (size_t)rows * dim, 1e-5, 1e-5);
  free(table); free(ids); free(out); free(out0); free(ref); free(rdense); free(dout); free(oid);
  free(orow); free(ws); free(dense);
}

static void test_embbag(void **state) {
  (void)state;
  bag_case(20, 5, 12, 3, 3, 5, 0, 1);
  bag_case(20, 5, 12, 3, 4, 7, 1, 2);
  bag_case(50, 16, 64, 1, 26, 16, 0, 3); /* DLRM: one column of sparse[B,26] */
  bag_case(300, 8, 40, 6, 9, 10, 1, 4);
  be->set_threads(2);
  bag_case(70000, 16, 4096, 4, 5, 20, 1, 5); /* multi-byte radix passes, parallel */
  be->set_threads(1);
}

static void test_coalesce(void **state) {
  (void)state;
  tu_seed(10);
  int n = 5000, dim = 12, range = 300;
  int32_t *ids = malloc(n * 4);
  for (int i = 0; i < n; i++) ids[i] = tu_int(7) == 0 ? -1 : tu_int(range) * 1000; /* sparse, big ids */
  float *rows = tu_rand((size_t)n * dim, -1, 1);
  int32_t *o1 = malloc(n * 4), *o2 = malloc(n * 4);
  float *r1 = malloc((size_t)n * dim * 4), *r2 = malloc((size_t)n * dim * 4);
  void *ws = malloc(be->sparse_coalesce_ws_bytes(n, dim));
  be->sparse_coalesce(ids, rows, n, dim, o1, r1, ws);
  /* reference */
  double *acc = calloc((size_t)range * dim, 8);
  int *seen = calloc(range, sizeof(int));
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0) continue;
    seen[ids[i] / 1000] = 1;
    for (int d = 0; d < dim; d++) acc[(size_t)(ids[i] / 1000) * dim + d] += rows[(size_t)i * dim + d];
  }
  int u = 0;
  for (int k = 0; k < range; k++) {
    if (!seen[k]) continue;
    assert_int_equal(o1[u], k * 1000);
    tu_close("coalesce rows", r1 + (size_t)u * dim, acc + (size_t)k * dim, dim, 1e-5, 1e-5);
    u++;
  }
  for (int i = u; i < n; i++) {
    assert_int_equal(o1[i], -1);
    for (int d = 0; d < dim; d++) assert_true(r1[(size_t)i * dim + d] == 0.0f);
  }
  /* same input, same bits: again, and with 2 threads */
  be->sparse_coalesce(ids, rows, n, dim, o2, r2, ws);
  assert_memory_equal(o1, o2, n * 4);
  assert_memory_equal(r1, r2, (size_t)n * dim * 4);
  be->set_threads(2);
  memset(r2, 0xff, (size_t)n * dim * 4);
  be->sparse_coalesce(ids, rows, n, dim, o2, r2, ws);
  be->set_threads(1);
  assert_memory_equal(o1, o2, n * 4);
  assert_memory_equal(r1, r2, (size_t)n * dim * 4);
  /* sparse_to_dense accumulates duplicates */
  float dense[4 * 2] = {1, 1, 1, 1, 1, 1, 1, 1};
  int32_t did[4] = {2, -1, 2, 0};
  float drows[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  be->sparse_to_dense(did, drows, 4, 2, dense);
  float want[8] = {8, 9, 1, 1, 7, 9, 1, 1};
  assert_memory_equal(dense, want, sizeof want);
  free(ids); free(rows); free(o1); free(o2); free(r1); free(r2); free(ws); free(acc); free(seen);
}

/* Segments of 0..5 ids (some -1) over a table; the forward against a double
 * loop, the backward as the transpose: <fwd(table), dout> = <table, scatter(bwd(dout))>
 * holds exactly in structure (each id gets its segment's row, bit for bit). */
static void test_segments(void **state) {
  (void)state;
  tu_seed(11);
  int rows = 40, dim = 7, ldo = 10, nseg = 300;
  int32_t *ends = malloc((size_t)nseg * 4), *ids = malloc((size_t)nseg * 5 * 4), *seg = malloc((size_t)nseg * 5 * 4);
  int n = 0;
  for (int s = 0; s < nseg; s++) {
    int len = s % 9 == 4 ? 0 : tu_int(6); /* empty segments too */
    for (int j = 0; j < len; j++) seg[n] = s, ids[n++] = tu_int(5) == 0 ? -1 : tu_int(rows);
    ends[s] = n;
  }
  float *table = tu_rand((size_t)rows * dim, -1, 1), *out = tu_rand((size_t)nseg * ldo, -1, 1);
  float *out0 = tu_copy(out, (size_t)nseg * ldo), *dout = tu_rand((size_t)nseg * ldo, -1, 1);
  double *ref = calloc((size_t)nseg * dim, 8);
  for (int k = 0; k < n; k++)
    if (ids[k] >= 0)
      for (int d = 0; d < dim; d++) ref[(size_t)seg[k] * dim + d] += table[(size_t)ids[k] * dim + d];
  be->set_threads(2);
  be->embbag_seg_fwd(table, dim, ids, ends, nseg, out, ldo);
  for (int s = 0; s < nseg; s++) {
    tu_close("embbag_seg_fwd", out + (size_t)s * ldo, ref + (size_t)s * dim, dim, 1e-6, 1e-6);
    for (int d = dim; d < ldo; d++) assert_true(out[(size_t)s * ldo + d] == out0[(size_t)s * ldo + d]);
  }
  /* a one-id segment is a plain lookup, bit for bit (dlrm's bags) */
  float one[7];
  int32_t e1 = 1, id1 = 13;
  be->embbag_seg_fwd(table, dim, &id1, &e1, 1, one, dim);
  assert_memory_equal(one, table + 13 * dim, sizeof one);
  float *g = tu_rand((size_t)n * dim + 1, -1, 1);
  float guard = g[(size_t)n * dim];
  be->embbag_seg_bwd(dout, ldo, ends, nseg, dim, g);
  be->set_threads(1);
  for (int k = 0; k < n; k++)
    assert_memory_equal(g + (size_t)k * dim, dout + (size_t)seg[k] * ldo, (size_t)dim * 4);
  assert_true(g[(size_t)n * dim] == guard); /* nothing past the last id */
  free(ends); free(ids); free(seg); free(table); free(out); free(out0); free(dout); free(ref); free(g);
}

int main(void) {
  be = cddp_cpu_backend();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_embbag), cmocka_unit_test(test_coalesce),
                                     cmocka_unit_test(test_segments)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

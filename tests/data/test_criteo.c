/* Criteo converter on the real 1,999-line Kaggle sample: row count, values of
 * a few lines against a hand computation, gzip input, --min-count
 * dictionary, --val-fraction split, --on-bad-line skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "core/log.h"
#include "data/convert.h"
#include "data/dataset.h"
#include "data/h5util.h"

#include "tmpdir.h"

typedef struct {
  int64_t n;
  uint8_t *label;
  float *dense;
  int32_t *sparse;
  cddp_data_info info;
} table;

static void load(const char *path, table *t) {
  cddp_dataset *d = cddp_dataset_open(path);
  t->info = d->info;
  t->n = d->info.rows;
  t->label = malloc((size_t)t->n);
  t->dense = malloc(sizeof(float) * 13 * (size_t)t->n);
  t->sparse = malloc(sizeof(int32_t) * 26 * (size_t)t->n);
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)t->n);
  for (int64_t i = 0; i < t->n; i++) rows[i] = i;
  void *scratch = malloc(cddp_dataset_scratch_bytes(d, (int)t->n));
  cddp_dataset_read(d, 0, rows, (int)t->n, t->label, scratch);
  cddp_dataset_read(d, 1, rows, (int)t->n, t->dense, scratch);
  cddp_dataset_read(d, 2, rows, (int)t->n, t->sparse, scratch);
  free(scratch);
  free(rows);
  cddp_dataset_close(d);
}

static void unload(table *t) {
  free(t->label);
  free(t->dense);
  free(t->sparse);
}

/* Independent re-statement of the documented hash: splitmix64's finaliser of
 * value ^ (column+1) << 32, scaled to [0, T-1) by multiply-shift, plus 1. */
static int32_t ref_hash(uint32_t v, int c, int64_t T) {
  uint64_t z = (uint64_t)v ^ ((uint64_t)(c + 1) << 32);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (int32_t)(1 + (uint64_t)(((unsigned __int128)z * (uint64_t)(T - 1)) >> 64));
}

static void test_sample_values(void **st) {
  (void)st;
  char out[512];
  snprintf(out, sizeof out, "%s/s.h5", g_dir);
  cddp_criteo_opts o = {.table_size = 1000, .quiet = 1};
  cddp_criteo_stats s = cddp_convert_criteo(CDDP_CRITEO_SAMPLE, out, &o);
  assert_int_equal(s.lines, 1999);
  assert_int_equal(s.rows, 1999);
  assert_int_equal(s.skipped, 0);
  table t;
  load(out, &t);
  assert_int_equal(t.n, 1999);
  for (int k = 0; k < 26; k++) assert_int_equal(t.info.table_sizes[k], 1000);
  int64_t pos = 0;
  for (int64_t i = 0; i < t.n; i++) pos += t.label[i];
  assert_int_equal(pos, 418); /* README: 418 positives */
  /* line 1: 0 | 1 1 5 0 1382 4 15 2 181 1 2 _ 2 | 68fd1e64 80e26c9b ... C22 empty ... 9727dd16 */
  const double l1[13] = {1, 1, 5, 0, 1382, 4, 15, 2, 181, 1, 2, 0 /* missing */, 2};
  assert_int_equal(t.label[0], 0);
  for (int k = 0; k < 13; k++) assert_float_equal(t.dense[k], log(1 + l1[k]), 1e-6);
  assert_int_equal(t.sparse[0], ref_hash(0x68fd1e64u, 0, 1000));
  assert_int_equal(t.sparse[1], ref_hash(0x80e26c9bu, 1, 1000));
  assert_int_equal(t.sparse[25], ref_hash(0x9727dd16u, 25, 1000));
  assert_int_equal(t.sparse[21], 0); /* C22 is empty on line 1: reserved id */
  /* line 3: 0 2 0 1 14 767 89 4 2 245 1 3 3 45 | 287e684f 0a519c5c ... */
  const double l3[13] = {2, 0, 1, 14, 767, 89, 4, 2, 245, 1, 3, 3, 45};
  for (int k = 0; k < 13; k++) assert_float_equal(t.dense[2 * 13 + k], log(1 + l3[k]), 1e-6);
  assert_int_equal(t.sparse[2 * 26 + 0], ref_hash(0x287e684fu, 0, 1000));
  assert_int_equal(t.sparse[2 * 26 + 1], ref_hash(0x0a519c5cu, 1, 1000));
  /* every line against the parser: negative I2 clipped to 0, missing -> 0 / id 0 */
  FILE *f = fopen(CDDP_CRITEO_SAMPLE, "r");
  char line[4096];
  int64_t neg = 0;
  for (int64_t i = 0; fgets(line, sizeof line, f); i++) {
    size_t len = strcspn(line, "\r\n");
    uint8_t y, miss[39];
    char why[CDDP_CRITEO_WHY];
    int64_t ints[13];
    uint32_t hex[26];
    assert_null(cddp_criteo_parse_line(line, line + len, &y, ints, hex, miss, why));
    assert_int_equal(t.label[i], y);
    for (int k = 0; k < 13; k++) {
      neg += ints[k] < 0;
      double x = miss[k] || ints[k] < 0 ? 0 : (double)ints[k];
      assert_true(t.dense[i * 13 + k] == (float)log1p(x));
    }
    for (int c = 0; c < 26; c++)
      assert_int_equal(t.sparse[i * 26 + c], miss[13 + c] ? 0 : ref_hash(hex[c], c, 1000));
  }
  fclose(f);
  assert_true(neg > 0); /* the sample holds negative I2 values */
  unload(&t);
}

static void test_gzip_same_as_plain(void **st) {
  (void)st;
  char gz[512], a[512], b[512];
  snprintf(gz, sizeof gz, "%s/s.tsv.gz", g_dir);
  snprintf(a, sizeof a, "%s/plain.h5", g_dir);
  snprintf(b, sizeof b, "%s/gz.h5", g_dir);
  FILE *in = fopen(CDDP_CRITEO_SAMPLE, "rb");
  gzFile g = gzopen(gz, "wb6");
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) gzwrite(g, buf, (unsigned)n);
  fclose(in);
  gzclose(g);
  cddp_criteo_opts o = {.quiet = 1};
  cddp_convert_criteo(CDDP_CRITEO_SAMPLE, a, &o);
  cddp_criteo_stats s = cddp_convert_criteo(gz, b, &o);
  assert_int_equal(s.rows, 1999);
  table x, y;
  load(a, &x);
  load(b, &y);
  assert_int_equal(x.info.table_sizes[3], CDDP_CRITEO_DEFAULT_TABLE);
  assert_memory_equal(x.label, y.label, 1999);
  assert_memory_equal(x.dense, y.dense, 1999 * 13 * sizeof(float));
  assert_memory_equal(x.sparse, y.sparse, 1999 * 26 * sizeof(int32_t));
  unload(&x);
  unload(&y);
}

static void test_min_count_dictionary(void **st) {
  (void)st;
  char out[512];
  snprintf(out, sizeof out, "%s/mc.h5", g_dir);
  cddp_criteo_opts o = {.min_count = 3, .quiet = 1};
  cddp_convert_criteo(CDDP_CRITEO_SAMPLE, out, &o);
  table t;
  load(out, &t);
  /* recount by brute force: column 0 (C1) */
  for (int c = 0; c < 26; c += 5) {
    uint32_t *vals = malloc(4 * 1999);
    uint8_t *have = malloc(1999);
    FILE *f = fopen(CDDP_CRITEO_SAMPLE, "r");
    char line[4096];
    for (int i = 0; fgets(line, sizeof line, f); i++) {
      uint8_t y, miss[39];
      char why[CDDP_CRITEO_WHY];
      int64_t ints[13];
      uint32_t hex[26];
      cddp_criteo_parse_line(line, line + strcspn(line, "\r\n"), &y, ints, hex, miss, why);
      vals[i] = hex[c];
      have[i] = !miss[13 + c];
    }
    fclose(f);
    int64_t distinct_frequent = 0, best = -1, best_count = 0;
    for (int i = 0; i < 1999; i++) {
      int cnt = 0, first = 1;
      for (int j = 0; j < 1999; j++)
        if (have[j] && have[i] && vals[j] == vals[i]) {
          cnt++;
          if (j < i) first = 0;
        }
      if (!have[i] || cnt < 3) assert_int_equal(t.sparse[i * 26 + c], 0);
      else {
        assert_true(t.sparse[i * 26 + c] > 0);
        distinct_frequent += first;
        if (cnt > best_count || (cnt == best_count && vals[i] < (uint32_t)best)) {
          best_count = cnt;
          best = vals[i];
        }
      }
      for (int j = 0; j < 1999; j++) /* same value <-> same id */
        if (have[i] && have[j] && vals[i] == vals[j]) assert_int_equal(t.sparse[i * 26 + c], t.sparse[j * 26 + c]);
    }
    assert_int_equal(t.info.table_sizes[c], distinct_frequent + 1);
    if (best >= 0) /* the most frequent value gets id 1 */
      for (int i = 0; i < 1999; i++)
        if (have[i] && vals[i] == (uint32_t)best) assert_int_equal(t.sparse[i * 26 + c], 1);
    free(vals);
    free(have);
  }
  unload(&t);
}

static void test_val_split_and_skip(void **st) {
  (void)st;
  char out[512], val[512], bad[512];
  snprintf(out, sizeof out, "%s/split.h5", g_dir);
  snprintf(val, sizeof val, "%s/split-val.h5", g_dir);
  cddp_criteo_opts o = {.val_fraction = 0.2, .seed = 3, .quiet = 1};
  cddp_criteo_stats s = cddp_convert_criteo(CDDP_CRITEO_SAMPLE, out, &o);
  assert_int_equal(s.rows + s.val_rows, 1999);
  assert_true(s.val_rows > 300 && s.val_rows < 500);
  table a, b;
  load(out, &a);
  load(val, &b);
  assert_int_equal(a.n, s.rows);
  assert_int_equal(b.n, s.val_rows);
  unload(&a);
  unload(&b);
  cddp_criteo_stats s2 = cddp_convert_criteo(CDDP_CRITEO_SAMPLE, out, &o);
  assert_int_equal(s2.val_rows, s.val_rows); /* deterministic */

  /* three bad lines inserted: skipped, counted, stored as an attribute */
  snprintf(bad, sizeof bad, "%s/bad.tsv", g_dir);
  FILE *in = fopen(CDDP_CRITEO_SAMPLE, "r"), *f = fopen(bad, "w");
  char line[4096];
  for (int i = 0; fgets(line, sizeof line, in); i++) {
    if (i == 10) fputs("1\t2\t3\n", f);
    if (i == 500) fputs("0\t1\tx\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n", f);
    if (i == 1500) fputs("0\t\t\t\t\t\t\t\t\t\t\t\t\t\tzzzz\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n", f);
    fputs(line, f);
  }
  fclose(in);
  fclose(f);
  cddp_criteo_opts o2 = {.skip_bad = 1, .quiet = 1};
  cddp_log_set_quiet(1);
  s = cddp_convert_criteo(bad, out, &o2);
  assert_int_equal(s.skipped, 3);
  assert_int_equal(s.rows, 1999);
  hid_t h = cddp_h5_open_ro(out);
  int64_t sk;
  cddp_h5_attr_i64(out, h, "root", "skipped_lines", &sk, 1);
  assert_int_equal(sk, 3);
  H5Fclose(h);
  /* the parser names each problem */
  uint8_t y, miss[39];
  char why[CDDP_CRITEO_WHY];
  int64_t ints[13];
  uint32_t hex[26];
  const char *l1 = "1\t2\t3";
  assert_non_null(strstr(cddp_criteo_parse_line(l1, l1 + strlen(l1), &y, ints, hex, miss, why), "field count (3"));
  /* edge cases on an otherwise valid line: field k replaced by a bad value */
  char good[1024];
  int k = 0;
  k += sprintf(good + k, "1");
  for (int f = 1; f <= 13; f++) k += sprintf(good + k, "\t%d", f * 7 - 20);
  for (int f = 0; f < 26; f++) k += sprintf(good + k, "\t%08x", 0xabc123u * (unsigned)f);
  assert_null(cddp_criteo_parse_line(good, good + k, &y, ints, hex, miss, why));
  assert_int_equal(ints[0], -13);
  assert_int_equal(hex[25], (uint32_t)(0xabc123u * 25u));
  const struct { int field; const char *val, *want; } cases[] = {
      {2, "-", "bad integer '-' in field I2"},      {2, "1-2", "bad integer '1-2'"},
      {3, "+5", "bad integer '+5'"},                {4, "1234567890123456789", "bad integer"},
      {15, "0x12", "bad hex '0x12' in field C2"},   {16, "123456789", "bad hex '123456789'"},
      {20, "12 34", "bad hex"},                     {0, "", "bad label ''"},
      {0, "01", "bad label '01'"},                  {39, "abc\tdef", "wrong field count (41, expected 40)"},
      /* 20+ digits: rejected without overflowing the accumulator (UBSan) */
      {5, "99999999999999999999", "bad integer '99999999999999999999' in field I5"},
      {6, "-123456789012345678901234567890", "bad integer '-12345678901234567890123"},
      /* control bytes are reported (escaped by cddp_die), not swallowed */
      {0, "\r1", "bad label '\r1'"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    char line[1100];
    int n = 0;
    const char *p = good;
    for (int f = 0; f < 40; f++) {
      const char *q = strchr(p, '\t');
      if (!q) q = good + k;
      if (f) line[n++] = '\t';
      if (f == cases[c].field) n += sprintf(line + n, "%s", cases[c].val);
      else {
        memcpy(line + n, p, (size_t)(q - p));
        n += (int)(q - p);
      }
      p = q + 1;
    }
    const char *r = cddp_criteo_parse_line(line, line + n, &y, ints, hex, miss, why);
    assert_non_null(r);
    if (!strstr(r, cases[c].want)) fail_msg("case %zu: '%s' does not contain '%s'", c, r, cases[c].want);
  }
  /* the longest accepted integer: 18 digits */
  {
    char line[1100];
    int n = sprintf(line, "0\t-999999999999999999");
    const char *p = strchr(strchr(good, '\t') + 1, '\t');
    n += sprintf(line + n, "%s", p);
    assert_null(cddp_criteo_parse_line(line, line + n, &y, ints, hex, miss, why));
    assert_true(ints[0] == -999999999999999999LL);
  }
  /* a line cut short, and a trailing tab (41 fields) */
  assert_non_null(strstr(cddp_criteo_parse_line(good, good + k - 12, &y, ints, hex, miss, why), "field count (39"));
  good[k] = '\t';
  assert_non_null(strstr(cddp_criteo_parse_line(good, good + k + 1, &y, ints, hex, miss, why), "field count (41"));
}

static int setup(void **st) {
  (void)st;
  return tmpdir_setup("data_criteo");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sample_values),
      cmocka_unit_test(test_gzip_same_as_plain),
      cmocka_unit_test(test_min_count_dictionary),
      cmocka_unit_test(test_val_split_and_skip),
  };
  return cmocka_run_group_tests(tests, setup, tmpdir_teardown);
}

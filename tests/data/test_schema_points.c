/* The test-only schema of schema_points.c, registered from tests/ with one
 * table line: the descriptor table finds it, the writer writes it, a file of
 * it opens, the loader batches it and checks its values (exit 3 naming file,
 * row and column), refuses image augmentation (no images in its batches),
 * and `cddp info` describes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "data/loader.h"
#include "data/schema.h"
#include "train/train_child.h"

enum { N = 10, NC = 3 };

static char g_dir[64];

/* Writes N rows: point i = (i, -i), label i % NC; then bad_row gets bad_label
 * and nan_row a NaN (-1: none). */
static void write_points(const char *path, int bad_row, int32_t bad_label, int nan_row) {
  float pts[N * 2];
  int32_t lab[N];
  for (int i = 0; i < N; i++) {
    pts[2 * i] = (float)i;
    pts[2 * i + 1] = -(float)i;
    lab[i] = i % NC;
  }
  if (bad_row >= 0) lab[bad_row] = bad_label;
  if (nan_row >= 0) pts[2 * nan_row + 1] = NAN;
  cddp_data_info info = {.schema = CDDP_SCHEMA_POINTS, .rows = N, .num_classes = NC};
  cddp_writer *w = cddp_writer_create(path, CDDP_SCHEMA_POINTS, &info);
  cddp_writer_append(w, 0, pts, N);
  cddp_writer_append(w, 1, lab, N);
  cddp_writer_commit(w, &info);
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static void test_registered(void **s) {
  (void)s;
  assert_ptr_equal(cddp_schema_find("cddp.test_points.v1"), &cddp_schema_points);
  assert_ptr_equal(cddp_schema_get(CDDP_SCHEMA_POINTS), &cddp_schema_points);
  assert_ptr_equal(cddp_schema_find("cddp.ctr.v1"), &cddp_schema_ctr);
  assert_int_equal(CDDP_SCHEMA_END, 5); /* ctr, twotower, image and the test schema, from 1 */
  for (int k = 1; k < CDDP_SCHEMA_END; k++) { /* each descriptor agrees with its table line */
    assert_int_equal(cddp_schema_get((cddp_schema)k)->id, k);
    assert_string_equal(cddp_schema_get((cddp_schema)k)->name, cddp_schema_name((cddp_schema)k));
  }
  char names[256];
  cddp_schema_list_names(names, sizeof names);
  assert_string_equal(names, "cddp.ctr.v1, cddp.twotower.v1, cddp.image.v1 or cddp.test_points.v1");
}

static void test_write_open_load(void **s) {
  (void)s;
  char p[128];
  path_of(p, sizeof p, "good.h5");
  write_points(p, -1, 0, -1);
  cddp_dataset *d = cddp_dataset_open(p);
  assert_int_equal(d->info.schema, CDDP_SCHEMA_POINTS);
  assert_int_equal(d->info.rows, N);
  assert_int_equal(d->info.num_classes, NC);
  assert_int_equal(d->ncols, 2);
  assert_string_equal(d->col[0].name, "points");
  cddp_dataset_close(d);

  cddp_loader_opts o = {.world = 1, .batch = 4, .eval = CDDP_EVAL_CONTIGUOUS, .shuffle = CDDP_SHUFFLE_NONE};
  cddp_loader *l = cddp_loader_open(p, &o);
  cddp_loader_start_epoch(l, 0);
  const cddp_batch *b;
  int seen = 0;
  while ((b = cddp_loader_next(l))) {
    for (int i = 0; i < b->n; i++) {
      int64_t r = b->index[i];
      assert_true(b->dense[2 * i] == (float)r);
      assert_true(b->dense[2 * i + 1] == -(float)r);
      assert_int_equal(b->labels[i], r % NC);
      seen++;
    }
  }
  assert_int_equal(seen, N);
  cddp_loader_close(l);
}

static void load_all(void *arg) {
  cddp_loader_opts o = {.world = 1, .batch = 4, .eval = CDDP_EVAL_CONTIGUOUS, .shuffle = CDDP_SHUFFLE_NONE};
  cddp_loader *l = cddp_loader_open(arg, &o);
  cddp_loader_start_epoch(l, 0);
  while (cddp_loader_next(l)) {
  }
  cddp_loader_close(l);
}

static void test_bad_values(void **s) {
  (void)s;
  char p[128], err[1024], want[256];
  path_of(p, sizeof p, "bad_label.h5");
  write_points(p, 7, 5, -1);
  assert_int_equal(run_child(load_all, p, err, sizeof err), 3);
  snprintf(want, sizeof want, "%s: row 7, column labels: label 5 outside [0, 3)", p);
  assert_non_null(strstr(err, want));

  path_of(p, sizeof p, "nan.h5");
  write_points(p, -1, 0, 2);
  assert_int_equal(run_child(load_all, p, err, sizeof err), 3);
  snprintf(want, sizeof want, "%s: row 2, column points[1]: value nan is not finite", p);
  assert_non_null(strstr(err, want));
}

static void load_flipped(void *arg) {
  cddp_loader_opts o = {.world = 1, .batch = 4, .shuffle = CDDP_SHUFFLE_NONE, .augment = {.hflip = 1}};
  cddp_loader_close(cddp_loader_open(arg, &o));
}

/* Augmentation needs images in the batch layout; points have none. */
static void test_no_augment(void **s) {
  (void)s;
  char p[128], err[1024];
  path_of(p, sizeof p, "flip.h5");
  write_points(p, -1, 0, -1);
  assert_int_equal(run_child(load_flipped, p, err, sizeof err), 2);
  assert_non_null(strstr(err, "image augmentation needs"));
}

typedef struct {
  const char *file, *out;
} info_args;

static void info_child(void *arg) {
  const info_args *a = arg;
  int fd = open(a->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  char *argv[] = {"info", (char *)a->file, NULL};
  int rc = cddp_cmd_info(2, argv);
  fflush(stdout);
  _exit(rc);
}

static void test_info(void **s) {
  (void)s;
  char p[128], out[128], err[1024], text[4096] = "";
  path_of(p, sizeof p, "info.h5");
  path_of(out, sizeof out, "info.txt");
  write_points(p, -1, 0, -1);
  info_args a = {p, out};
  assert_int_equal(run_child(info_child, &a, err, sizeof err), 0);
  FILE *f = fopen(out, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = 0;
  fclose(f);
  assert_non_null(strstr(text, "  schema                 cddp.test_points.v1\n"));
  assert_non_null(strstr(text, "  rows                   10\n"));
  assert_non_null(strstr(text, "  dataset points         float32  [10,2]"));
  assert_non_null(strstr(text, "  num_classes            3\n"));
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/cddp_schema_points_XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registered),
      cmocka_unit_test(test_write_open_load),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_no_augment),
      cmocka_unit_test(test_info),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) return 1;
  return rc;
}

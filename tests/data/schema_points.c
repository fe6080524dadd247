/* A test-only dataset schema, cddp.test_points.v1: 2-D float points with
 * int32 class labels and a root attribute num_classes. Registered for its
 * test by this file plus one table line (tests/data/CMakeLists.txt); the
 * points travel in the batch's `dense` array, the labels in `labels`. */
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "data/h5util.h"
#include "data/schema.h"

enum { POINTS = 0, LABELS = 1, DIM = 2 };

static void read_attrs(cddp_dataset *d) {
  int64_t nc;
  cddp_h5_attr_i64(d->path, d->file, "the root group", "num_classes", &nc, 1);
  if (nc <= 0 || nc > INT32_MAX)
    cddp_die(CDDP_EXIT_DATA, "%s: num_classes is %lld, must be in [1, 2^31)", d->path, (long long)nc);
  d->info.num_classes = (int)nc;
}

static void write_attrs(cddp_writer *w, const cddp_data_info *info) {
  int64_t nc = info->num_classes;
  cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_classes", &nc, 1);
}

static int batch_fields(const cddp_data_info *info, cddp_batch_field *f) {
  (void)info;
  f[0] = (cddp_batch_field){offsetof(cddp_batch, dense), DIM * sizeof(float)};
  f[1] = (cddp_batch_field){offsetof(cddp_batch, labels), sizeof(int32_t)};
  return 2;
}

static void fill(const cddp_fill *f) {
  cddp_dataset_read_ordered(f->d, POINTS, f->rows, f->order, f->n, f->b->dense, f->scratch);
  cddp_dataset_read_ordered(f->d, LABELS, f->rows, f->order, f->n, f->b->labels, f->scratch);
  for (int i = 0; i < f->n * DIM; i++)
    if (!(f->b->dense[i] - f->b->dense[i] == 0.0f)) /* inf or nan */
      cddp_die(CDDP_EXIT_DATA, "%s: row %lld, column points[%d]: value %g is not finite", f->d->path,
               (long long)f->rows[i / DIM], i % DIM, (double)f->b->dense[i]);
  cddp_check_ids(f->d, f->b->labels, f->n, 1, f->rows, "labels", 0, f->d->info.num_classes);
}

static void shape(const cddp_data_info *in, char *out, size_t cap) {
  snprintf(out, cap, "num_classes = %d\n", in->num_classes);
}

static void describe(cddp_dataset *d) { printf("  num_classes            %d\n", d->info.num_classes); }

const cddp_schema_desc cddp_schema_points = {
    .id = CDDP_SCHEMA_POINTS,
    .name = "cddp.test_points.v1",
    .metric = "class",
    .ncols = 2,
    .cols = {{"points", H5T_FLOAT, 4, 1, 2, {DIM}, {0}, "float32"},
             {"labels", H5T_INTEGER, 4, 1, 1, {0}, {0}, "int32"}},
    .read_attrs = read_attrs,
    .write_attrs = write_attrs,
    .batch_fields = batch_fields,
    .fill = fill,
    .shape = shape,
    .describe = describe,
};

/* cddp.ctr.v1: click-through rows (label, 13 dense features, 26 categorical
 * ids with their table sizes); metric AUC/log loss. */
#include <stdio.h>

#include "core/error.h"
#include "data/h5util.h"
#include "data/schema.h"

static void read_attrs(cddp_dataset *d) {
  cddp_h5_attr_i64(d->path, d->col[CDDP_CTR_SPARSE_COL].id, "dataset 'sparse'", "table_sizes", d->info.table_sizes,
                   CDDP_CTR_SPARSE);
  for (int k = 0; k < CDDP_CTR_SPARSE; k++)
    if (d->info.table_sizes[k] <= 0 || d->info.table_sizes[k] > INT32_MAX)
      cddp_die(CDDP_EXIT_DATA, "%s: table_sizes[%d] is %lld, must be in [1, 2^31)", d->path, k,
               (long long)d->info.table_sizes[k]);
}

static void write_attrs(cddp_writer *w, const cddp_data_info *info) {
  cddp_h5_write_attr_i64(w->tmp_path, w->dset[CDDP_CTR_SPARSE_COL], "table_sizes", info->table_sizes,
                         CDDP_CTR_SPARSE);
}

static int batch_fields(const cddp_data_info *info, cddp_batch_field *f) {
  (void)info;
  f[0] = (cddp_batch_field){offsetof(cddp_batch, dense), CDDP_CTR_DENSE * sizeof(float)};
  f[1] = (cddp_batch_field){offsetof(cddp_batch, sparse), CDDP_CTR_SPARSE * sizeof(int32_t)};
  f[2] = (cddp_batch_field){offsetof(cddp_batch, label), sizeof(float)};
  return 3;
}

static void fill(const cddp_fill *f) {
  cddp_dataset *d = f->d;
  cddp_batch *bt = f->b;
  const int64_t *rows = f->rows;
  int n = f->n;
  /* The uint8 labels land in the first n bytes of the float label array and
   * are widened in place from the last one down (float i covers bytes 4i..,
   * never a byte j < i still to be read). */
  uint8_t *y = (uint8_t *)bt->label;
  cddp_dataset_read_ordered(d, CDDP_CTR_LABEL, rows, f->order, n, y, f->scratch);
  cddp_dataset_read_ordered(d, CDDP_CTR_DENSE_COL, rows, f->order, n, bt->dense, f->scratch);
  cddp_dataset_read_ordered(d, CDDP_CTR_SPARSE_COL, rows, f->order, n, bt->sparse, f->scratch);
  for (int i = 0; i < n; i++)
    if (y[i] > 1)
      cddp_die(CDDP_EXIT_DATA, "%s: row %lld, column label: label %d is not 0 or 1", d->path, (long long)rows[i],
               y[i]);
  for (int i = n - 1; i >= 0; i--) bt->label[i] = (float)y[i];
  const uint32_t *bits = (const uint32_t *)bt->dense;
  for (int i = 0; i < n * CDDP_CTR_DENSE; i++)
    if ((bits[i] & 0x7f800000u) == 0x7f800000u) {
      char col[32];
      snprintf(col, sizeof col, "dense[%d]", i % CDDP_CTR_DENSE);
      cddp_die(CDDP_EXIT_DATA, "%s: row %lld, column %s: value %g is not finite", d->path,
               (long long)rows[i / CDDP_CTR_DENSE], col, (double)bt->dense[i]);
    }
  const int64_t *ts = d->info.table_sizes;
  for (int i = 0; i < n; i++) {
    int32_t *ids = bt->sparse + (size_t)i * CDDP_CTR_SPARSE;
    for (int k = 0; k < CDDP_CTR_SPARSE; k++)
      if (ids[k] < 0 || ids[k] >= ts[k]) {
        char col[32];
        snprintf(col, sizeof col, "sparse[%d]", k);
        cddp_bad_value(d, rows[i], col, "id %lld outside [0, %lld)", ids[k], ts[k]);
      }
    if (f->max_table_rows > 0)
      for (int k = 0; k < CDDP_CTR_SPARSE; k++) ids[k] = (int32_t)(ids[k] % f->max_table_rows);
  }
}

static void shape(const cddp_data_info *in, char *out, size_t cap) {
  size_t k = 0;
  out[0] = 0;
  for (int t = 0; t < CDDP_CTR_SPARSE && k < cap; t++)
    k += (size_t)snprintf(out + k, cap - k, "table_sizes[%d] = %lld\n", t, (long long)in->table_sizes[t]);
}

static void count_u8(const void *b, int64_t n, void *ctx) {
  int64_t *h = ctx;
  for (int64_t i = 0; i < n; i++) h[((const uint8_t *)b)[i]]++;
}

static void describe(cddp_dataset *d) {
  const cddp_data_info *in = &d->info;
  printf("  table_sizes           ");
  for (int k = 0; k < CDDP_CTR_SPARSE; k++) printf(" %lld", (long long)in->table_sizes[k]);
  printf("\n");
  int64_t h[256] = {0};
  cddp_dataset_scan(d, CDDP_CTR_LABEL, H5T_NATIVE_UINT8, 1, count_u8, h);
  int64_t bad = 0;
  for (int v = 2; v < 256; v++) bad += h[v];
  printf("  labels                 %lld positive (%.2f%%), %lld negative%s\n", (long long)h[1],
         100.0 * (double)h[1] / (double)in->rows, (long long)h[0], bad ? ", AND INVALID VALUES (not 0/1)" : "");
}

const cddp_schema_desc cddp_schema_ctr = {
    .id = CDDP_SCHEMA_CTR,
    .name = "cddp.ctr.v1",
    .metric = "ctr",
    .ncols = 3,
    .cols = {{"label", H5T_INTEGER, 1, 0, 1, {0}, {0}, "uint8"},
             {"dense", H5T_FLOAT, 4, 1, 2, {CDDP_CTR_DENSE}, {0}, "float32"},
             {"sparse", H5T_INTEGER, 4, 1, 2, {CDDP_CTR_SPARSE}, {0}, "int32"}},
    .read_attrs = read_attrs,
    .write_attrs = write_attrs,
    .batch_fields = batch_fields,
    .fill = fill,
    .shape = shape,
    .describe = describe,
};

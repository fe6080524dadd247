/* cddp.twotower.v1: (user, history, item, category) interactions with their
 * vocabulary sizes; metric Recall@K over the item corpus. */
#include <stdio.h>

#include "core/error.h"
#include "data/h5util.h"
#include "data/schema.h"

static void positive(const cddp_dataset *d, const char *what, int64_t v) {
  if (v <= 0 || v > INT32_MAX)
    cddp_die(CDDP_EXIT_DATA, "%s: %s is %lld, must be in [1, 2^31)", d->path, what, (long long)v);
}

static void read_attrs(cddp_dataset *d) {
  cddp_h5_attr_i64(d->path, d->file, "the root group", "num_users", &d->info.num_users, 1);
  cddp_h5_attr_i64(d->path, d->file, "the root group", "num_items", &d->info.num_items, 1);
  cddp_h5_attr_i64(d->path, d->file, "the root group", "num_cats", &d->info.num_cats, 1);
  positive(d, "num_users", d->info.num_users);
  positive(d, "num_items", d->info.num_items);
  positive(d, "num_cats", d->info.num_cats);
}

static void write_attrs(cddp_writer *w, const cddp_data_info *info) {
  cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_users", &info->num_users, 1);
  cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_items", &info->num_items, 1);
  cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_cats", &info->num_cats, 1);
}

static int batch_fields(const cddp_data_info *info, cddp_batch_field *f) {
  f[0] = (cddp_batch_field){offsetof(cddp_batch, user_id), sizeof(int32_t)};
  f[1] = (cddp_batch_field){offsetof(cddp_batch, user_hist), (size_t)info->hist_len * sizeof(int32_t)};
  f[2] = (cddp_batch_field){offsetof(cddp_batch, item_id), sizeof(int32_t)};
  f[3] = (cddp_batch_field){offsetof(cddp_batch, item_cat), sizeof(int32_t)};
  return 4;
}

static void fill(const cddp_fill *f) {
  cddp_dataset *d = f->d;
  const cddp_data_info *fi = &d->info;
  cddp_batch *bt = f->b;
  int n = f->n;
  cddp_dataset_read_ordered(d, CDDP_TT_USER, f->rows, f->order, n, bt->user_id, f->scratch);
  cddp_dataset_read_ordered(d, CDDP_TT_HIST, f->rows, f->order, n, bt->user_hist, f->scratch);
  cddp_dataset_read_ordered(d, CDDP_TT_ITEM, f->rows, f->order, n, bt->item_id, f->scratch);
  cddp_dataset_read_ordered(d, CDDP_TT_CAT, f->rows, f->order, n, bt->item_cat, f->scratch);
  cddp_check_ids(d, bt->user_id, n, 1, f->rows, "user_id", 0, fi->num_users);
  cddp_check_ids(d, bt->item_id, n, 1, f->rows, "item_id", 0, fi->num_items);
  cddp_check_ids(d, bt->item_cat, n, 1, f->rows, "item_cat", 0, fi->num_cats);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < fi->hist_len; k++) {
      int32_t v = bt->user_hist[(size_t)i * fi->hist_len + k];
      if (v < -1 || v >= fi->num_items) {
        char col[48];
        snprintf(col, sizeof col, "user_hist[%d]", k);
        cddp_bad_value(d, f->rows[i], col, "item %lld outside [-1, %lld)", v, fi->num_items);
      }
    }
}

static void shape(const cddp_data_info *in, char *out, size_t cap) {
  snprintf(out, cap, "num_users = %lld\nnum_items = %lld\nnum_cats = %lld\nhist_len = %d\n",
           (long long)in->num_users, (long long)in->num_items, (long long)in->num_cats, in->hist_len);
}

static void describe(cddp_dataset *d) {
  const cddp_data_info *in = &d->info;
  printf("  num_users              %lld\n  num_items              %lld\n  num_cats               %lld\n"
         "  hist_len               %d\n",
         (long long)in->num_users, (long long)in->num_items, (long long)in->num_cats, in->hist_len);
}

const cddp_schema_desc cddp_schema_twotower = {
    .id = CDDP_SCHEMA_TWOTOWER,
    .name = "cddp.twotower.v1",
    .metric = "retrieval",
    .ncols = 4,
    .cols = {{"user_id", H5T_INTEGER, 4, 1, 1, {0}, {0}, "int32"},
             {"user_hist", H5T_INTEGER, 4, 1, 2, {0}, {CDDP_INFO_DIM(hist_len)}, "int32"},
             {"item_id", H5T_INTEGER, 4, 1, 1, {0}, {0}, "int32"},
             {"item_cat", H5T_INTEGER, 4, 1, 1, {0}, {0}, "int32"}},
    .read_attrs = read_attrs,
    .write_attrs = write_attrs,
    .batch_fields = batch_fields,
    .fill = fill,
    .shape = shape,
    .describe = describe,
};

/* cddp.image.v1: uint8 images [N,H,W,C] with int32 class labels; metric
 * top-1 accuracy. */
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "data/h5util.h"
#include "data/schema.h"

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
  f[0] = (cddp_batch_field){offsetof(cddp_batch, images), (size_t)info->height * info->width * info->channels};
  f[1] = (cddp_batch_field){offsetof(cddp_batch, labels), sizeof(int32_t)};
  return 2;
}

/* Augmentation, when asked for, is the loader's (after the checks). */
static void fill(const cddp_fill *f) {
  cddp_dataset_read_ordered(f->d, CDDP_IMG_IMAGES, f->rows, f->order, f->n, f->b->images, f->scratch);
  cddp_dataset_read_ordered(f->d, CDDP_IMG_LABELS, f->rows, f->order, f->n, f->b->labels, f->scratch);
  cddp_check_ids(f->d, f->b->labels, f->n, 1, f->rows, "labels", 0, f->d->info.num_classes);
}

static void shape(const cddp_data_info *in, char *out, size_t cap) {
  snprintf(out, cap, "height = %d\nwidth = %d\nchannels = %d\nnum_classes = %d\n", in->height,
           in->width, in->channels, in->num_classes);
}

typedef struct {
  int64_t *h;
  int k;
  int64_t out;
} hist_ctx;

static void count_i32(const void *b, int64_t n, void *ctx) {
  hist_ctx *c = ctx;
  for (int64_t i = 0; i < n; i++) {
    int32_t v = ((const int32_t *)b)[i];
    if (v >= 0 && v < c->k) c->h[v]++;
    else c->out++;
  }
}

static void describe(cddp_dataset *d) {
  const cddp_data_info *in = &d->info;
  printf("  image                  %dx%dx%d (HxWxC)\n  num_classes            %d\n", in->height, in->width,
         in->channels, in->num_classes);
  hist_ctx hc = {cddp_xcalloc(sizeof(int64_t) * (size_t)in->num_classes, "info"), in->num_classes, 0};
  cddp_dataset_scan(d, CDDP_IMG_LABELS, H5T_NATIVE_INT32, 4, count_i32, &hc);
  printf("  labels                ");
  for (int k = 0; k < in->num_classes && k < 64; k++) printf(" %d:%lld", k, (long long)hc.h[k]);
  printf("%s\n", hc.out ? "  AND LABELS OUTSIDE [0, num_classes)" : "");
  free(hc.h);
}

const cddp_schema_desc cddp_schema_image = {
    .id = CDDP_SCHEMA_IMAGE,
    .name = "cddp.image.v1",
    .metric = "class",
    .ncols = 2,
    .cols = {{"images", H5T_INTEGER, 1, 0, 4, {0, 0, 0},
              {CDDP_INFO_DIM(height), CDDP_INFO_DIM(width), CDDP_INFO_DIM(channels)}, "uint8"},
             {"labels", H5T_INTEGER, 4, 1, 1, {0}, {0}, "int32"}},
    .read_attrs = read_attrs,
    .write_attrs = write_attrs,
    .batch_fields = batch_fields,
    .fill = fill,
    .shape = shape,
    .describe = describe,
};

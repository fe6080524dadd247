/* cddp info FILE.h5: schema, rows, shapes, table sizes, label balance and the
 * generator's/converter's attributes. Validates the file like the loader. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check_hdf5.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/h5util.h"

/* Reads integer column c (rank 1) in blocks and calls back per block. */
static void scan_col(cddp_dataset *d, int c, hid_t memtype, size_t esz, void (*fn)(const void *, int64_t, void *),
                     void *ctx) {
  enum { BLK = 1 << 20 };
  void *buf = cddp_xmalloc(esz * BLK, "info");
  hid_t fsp = h5Check(H5Dget_space(d->col[c].id), CDDP_EXIT_DATA, d->path);
  for (int64_t i = 0; i < d->info.rows; i += BLK) {
    hsize_t start = (hsize_t)i, cnt = (hsize_t)(d->info.rows - i < BLK ? d->info.rows - i : BLK);
    hid_t msp = h5Check(H5Screate_simple(1, &cnt, NULL), CDDP_EXIT_RUNTIME, d->path);
    h5Check(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &start, NULL, &cnt, NULL), CDDP_EXIT_DATA, d->path);
    if (H5Dread(d->col[c].id, memtype, msp, fsp, H5P_DEFAULT, buf) < 0)
      cddp_die(CDDP_EXIT_DATA, "%s: cannot read dataset '%s' (corrupt or truncated file)", d->path, d->col[c].name);
    H5Sclose(msp);
    fn(buf, (int64_t)cnt, ctx);
  }
  H5Sclose(fsp);
  free(buf);
}

static void count_u8(const void *b, int64_t n, void *ctx) {
  int64_t *h = ctx;
  for (int64_t i = 0; i < n; i++) h[((const uint8_t *)b)[i]]++;
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

static herr_t print_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *ctx) {
  if (!strcmp(name, "schema") || !strcmp(name, "num_users") || !strcmp(name, "num_items") ||
      !strcmp(name, "num_cats") || !strcmp(name, "num_classes"))
    return 0;
  const char *path = ctx;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return 0;
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  H5T_class_t cls = H5Tget_class(t);
  if (cls == H5T_STRING) {
    char s[512];
    H5Aclose(a);
    cddp_h5_attr_str(path, loc, name, s, sizeof s);
    printf("  %-22s %s\n", name, s);
    a = -1;
  } else if (np == 1 && cls == H5T_FLOAT) {
    double v;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0) printf("  %-22s %.6g\n", name, v);
  } else if (np == 1 && cls == H5T_INTEGER) {
    long long v;
    if (H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0) printf("  %-22s %lld\n", name, v);
  } else {
    printf("  %-22s (%lld values)\n", name, (long long)np);
  }
  H5Sclose(sp);
  H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return 0;
}

int cddp_cmd_info(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(argc == 2 ? stdout : stderr, "usage: cddp info FILE.h5\n");
    return argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : CDDP_EXIT_USAGE;
  }
  cddp_dataset *d = cddp_dataset_open(argv[1]);
  const cddp_data_info *in = &d->info;
  printf("%s\n  schema                 %s\n  rows                   %lld\n", d->path, cddp_schema_name(in->schema),
         (long long)in->rows);
  for (int c = 0; c < d->ncols; c++) {
    hid_t sp = H5Dget_space(d->col[c].id), ft = H5Dget_type(d->col[c].id);
    hsize_t dims[8];
    int r = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    char tn[32], sh[96];
    cddp_h5_type_name(ft, tn, sizeof tn);
    int k = snprintf(sh, sizeof sh, "[");
    for (int i = 0; i < r; i++) k += snprintf(sh + k, sizeof sh - (size_t)k, "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
    snprintf(sh + k, sizeof sh - (size_t)k, "]");
    char ch[64];
    hid_t dcpl = H5Dget_create_plist(d->col[c].id);
    hsize_t cd[8] = {0};
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      H5Pget_chunk(dcpl, 8, cd);
      snprintf(ch, sizeof ch, "chunks of %llu rows%s", (unsigned long long)cd[0],
               H5Pget_nfilters(dcpl) > 0 ? ", filtered" : "");
    } else {
      snprintf(ch, sizeof ch, "%s", H5Pget_layout(dcpl) == H5D_CONTIGUOUS ? "contiguous" : "compact");
    }
    H5Pclose(dcpl);
    printf("  dataset %-14s %-8s %-16s %s%s\n", d->col[c].name, tn, sh, ch, d->col[c].direct ? "" : " (read via HDF5)");
    H5Sclose(sp);
    H5Tclose(ft);
  }
  switch (in->schema) {
    case CDDP_SCHEMA_CTR: {
      printf("  table_sizes           ");
      for (int k = 0; k < CDDP_CTR_SPARSE; k++) printf(" %lld", (long long)in->table_sizes[k]);
      printf("\n");
      int64_t h[256] = {0};
      scan_col(d, CDDP_CTR_LABEL, H5T_NATIVE_UINT8, 1, count_u8, h);
      int64_t bad = 0;
      for (int v = 2; v < 256; v++) bad += h[v];
      printf("  labels                 %lld positive (%.2f%%), %lld negative%s\n", (long long)h[1],
             100.0 * (double)h[1] / (double)in->rows, (long long)h[0], bad ? ", AND INVALID VALUES (not 0/1)" : "");
      break;
    }
    case CDDP_SCHEMA_TWOTOWER:
      printf("  num_users              %lld\n  num_items              %lld\n  num_cats               %lld\n"
             "  hist_len               %d\n",
             (long long)in->num_users, (long long)in->num_items, (long long)in->num_cats, in->hist_len);
      break;
    case CDDP_SCHEMA_IMAGE: {
      printf("  image                  %dx%dx%d (HxWxC)\n  num_classes            %d\n", in->height, in->width,
             in->channels, in->num_classes);
      hist_ctx hc = {cddp_xcalloc(sizeof(int64_t) * (size_t)in->num_classes, "info"), in->num_classes, 0};
      scan_col(d, CDDP_IMG_LABELS, H5T_NATIVE_INT32, 4, count_i32, &hc);
      printf("  labels                ");
      for (int k = 0; k < in->num_classes && k < 64; k++) printf(" %d:%lld", k, (long long)hc.h[k]);
      printf("%s\n", hc.out ? "  AND LABELS OUTSIDE [0, num_classes)" : "");
      free(hc.h);
      break;
    }
  }
  hsize_t idx = 0;
  printf("  attributes:\n");
  H5Aiterate2(d->file, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, print_attr, d->path);
  cddp_dataset_close(d);
  return 0;
}

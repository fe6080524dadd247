/* cddp info FILE.h5: schema, rows, shapes, table sizes, label balance and the
 * generator's/converter's attributes. Validates the file like the loader;
 * exit 3 if the file is bad or one of the known attributes is unreadable. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check_hdf5.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/h5util.h"
#include "data/schema.h"

/* The attributes that cddp's generators and converters write, read one by
 * one by name: iterating over every attribute message makes HDF5 decode the
 * ones nobody asked for, and a corrupted one crashes inside the library. */
typedef enum { A_F64, A_I64, A_STR } attr_kind;
static const struct {
  const char *name;
  attr_kind kind;
} known_attrs[] = {
    {"generator", A_STR},      {"split", A_STR},          {"source", A_STR},
    {"gen_seed", A_I64},       {"skipped_lines", A_I64},  {"min_count", A_I64},
    {"bayes_auc", A_F64},      {"bayes_logloss", A_F64},  {"positive_rate", A_F64},
    {"noise_std", A_F64},      {"oracle_recall_at_50", A_F64},
};

/* Prints one scalar attribute if present and of the expected class. Returns
 * 0 (printed or absent), 1 (there but unreadable) or 2 (HDF5 cannot even
 * search the attribute table for it). */
static int print_known_attr(hid_t f, const char *name, attr_kind kind) {
  htri_t there = H5Aexists(f, name);
  if (there <= 0) return there < 0 ? 2 : 0;
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  hid_t t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
  H5T_class_t want = kind == A_STR ? H5T_STRING : kind == A_I64 ? H5T_INTEGER : H5T_FLOAT;
  int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == want && H5Sget_simple_extent_npoints(sp) == 1;
  char text[512];
  if (ok && kind == A_F64) {
    double v;
    ok = H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0;
    snprintf(text, sizeof text, "%.6g", v);
  } else if (ok && kind == A_I64) {
    long long v;
    ok = H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0;
    snprintf(text, sizeof text, "%lld", v);
  } else if (ok) {
    ok = cddp_h5_read_str_attr(a, t, text, sizeof text) == 0;
  }
  if (ok) {
    char shown[sizeof text * 4];
    cddp_escape(text, sizeof text, shown, sizeof shown, 0);
    printf("  %-22s %s\n", name, shown);
  } else {
    printf("  %-22s (unreadable: corrupt, or not a single %s)\n", name,
           kind == A_STR ? "string" : kind == A_I64 ? "integer" : "number");
  }
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return !ok;
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
  cddp_schema_get(in->schema)->describe(d);
  printf("  attributes:\n");
  char bad[512] = "";
  int table_damaged = 0;
  for (size_t i = 0; i < sizeof known_attrs / sizeof *known_attrs; i++) {
    int r = print_known_attr(d->file, known_attrs[i].name, known_attrs[i].kind);
    if (r == 1)
      snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "%s%s", bad[0] ? ", " : "",
               known_attrs[i].name);
    table_damaged |= r == 2;
  }
  fflush(stdout);
  int rc = 0;
  if (bad[0] || table_damaged) {
    char shown[4096];
    cddp_escape(d->path, strlen(d->path), shown, sizeof shown, 0);
    fprintf(stderr, "cddp: %s: %s%s%s (the datasets read fine; the file's metadata is damaged)\n",
            shown, bad[0] ? "unreadable attributes: " : "", bad,
            table_damaged ? (bad[0] ? "; corrupt attribute table" : "corrupt attribute table")
                          : "");
    rc = CDDP_EXIT_DATA;
  }
  cddp_dataset_close(d);
  return rc;
}

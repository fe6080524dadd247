/* Writes small valid or deliberately broken cddp files for the bad-input tests:
 *   cddp_data_tool mkbad KIND OUT.h5
 * KIND: good-ctr good-twotower good-image schema noschema missing dtype shape
 *       rowcount empty notables label nan id negid hist imglabel userid */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/h5util.h"
#include "data/prng.h"
#include "data/writer.h"

enum { N = 200 };

static void write_ctr(const char *path, const char *kind) {
  cddp_data_info in = {.schema = CDDP_SCHEMA_CTR, .rows = N};
  for (int k = 0; k < 26; k++) in.table_sizes[k] = 50 + k;
  static uint8_t lab[N];
  static float dense[N * 13];
  static int32_t sp[N * 26];
  cddp_rng r = {3};
  for (int i = 0; i < N; i++) {
    lab[i] = (uint8_t)cddp_rng_below(&r, 2);
    for (int k = 0; k < 13; k++) dense[i * 13 + k] = (float)cddp_rng_uniform(&r);
    for (int k = 0; k < 26; k++) sp[i * 26 + k] = (int32_t)cddp_rng_below(&r, (uint64_t)in.table_sizes[k]);
  }
  if (!strcmp(kind, "label")) lab[5] = 2;
  if (!strcmp(kind, "nan")) dense[7 * 13 + 3] = NAN;
  if (!strcmp(kind, "id")) sp[9 * 26 + 4] = (int32_t)in.table_sizes[4];
  if (!strcmp(kind, "negid")) sp[11 * 26 + 20] = -5;
  int n = !strcmp(kind, "empty") ? 0 : N;
  cddp_writer *w = cddp_writer_create(path, CDDP_SCHEMA_CTR, &in);
  cddp_writer_append(w, 0, lab, n);
  cddp_writer_append(w, 1, dense, n);
  cddp_writer_append(w, 2, sp, n);
  cddp_writer_commit(w, &in);
}

static void write_tt(const char *path, const char *kind) {
  cddp_data_info in = {.schema = CDDP_SCHEMA_TWOTOWER, .rows = N, .hist_len = 4, .num_users = 10,
                       .num_items = 20, .num_cats = 3};
  static int32_t u[N], h[N * 4], it[N], c[N];
  cddp_rng r = {4};
  for (int i = 0; i < N; i++) {
    u[i] = (int32_t)cddp_rng_below(&r, 10);
    it[i] = (int32_t)cddp_rng_below(&r, 20);
    c[i] = (int32_t)cddp_rng_below(&r, 3);
    for (int k = 0; k < 4; k++) h[i * 4 + k] = k < 2 ? (int32_t)cddp_rng_below(&r, 20) : -1;
  }
  if (!strcmp(kind, "hist")) h[13 * 4 + 2] = -2;
  if (!strcmp(kind, "userid")) u[17] = 10;
  cddp_writer *w = cddp_writer_create(path, CDDP_SCHEMA_TWOTOWER, &in);
  cddp_writer_append(w, 0, u, N);
  cddp_writer_append(w, 1, h, N);
  cddp_writer_append(w, 2, it, N);
  cddp_writer_append(w, 3, c, N);
  cddp_writer_commit(w, &in);
}

static void write_img(const char *path, const char *kind) {
  cddp_data_info in = {.schema = CDDP_SCHEMA_IMAGE, .rows = N, .height = 4, .width = 4, .channels = 1,
                       .num_classes = 5};
  static uint8_t im[N * 16];
  static int32_t lb[N];
  for (int i = 0; i < N; i++) {
    lb[i] = i % 5;
    for (int k = 0; k < 16; k++) im[i * 16 + k] = (uint8_t)(i + k);
  }
  if (!strcmp(kind, "imglabel")) lb[21] = 5;
  cddp_writer *w = cddp_writer_create(path, CDDP_SCHEMA_IMAGE, &in);
  cddp_writer_append(w, 0, im, N);
  cddp_writer_append(w, 1, lb, N);
  cddp_writer_commit(w, &in);
}

/* Replaces dataset name by one of type t and shape [rows, d1]. */
static void replace(hid_t f, const char *name, hid_t t, hsize_t rows, hsize_t d1) {
  H5Ldelete(f, name, H5P_DEFAULT);
  hsize_t dims[2] = {rows, d1};
  hid_t sp = H5Screate_simple(d1 ? 2 : 1, dims, NULL);
  hid_t d = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  void *zero = calloc(rows * (d1 ? d1 : 1), 8);
  H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, zero);
  free(zero);
  int64_t ts[26];
  for (int k = 0; k < 26; k++) ts[k] = 100;
  if (!strcmp(name, "sparse")) cddp_h5_write_attr_i64("mkbad", d, "table_sizes", ts, 26);
  H5Dclose(d);
  H5Sclose(sp);
}

int cddp_test_mkbad(const char *kind, const char *path) {
  if (!strcmp(kind, "good-twotower") || !strcmp(kind, "hist") || !strcmp(kind, "userid")) write_tt(path, kind);
  else if (!strcmp(kind, "good-image") || !strcmp(kind, "imglabel")) write_img(path, kind);
  else write_ctr(path, kind);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return 1;
  if (!strcmp(kind, "schema")) cddp_h5_write_attr_str(path, f, "schema", "cddp.foo.v1");
  if (!strcmp(kind, "noschema")) H5Adelete(f, "schema");
  if (!strcmp(kind, "missing")) H5Ldelete(f, "dense", H5P_DEFAULT);
  if (!strcmp(kind, "dtype")) replace(f, "sparse", H5T_STD_I64LE, N, 26);
  if (!strcmp(kind, "shape")) replace(f, "dense", H5T_IEEE_F32LE, N, 12);
  if (!strcmp(kind, "rowcount")) replace(f, "label", H5T_STD_U8LE, N - 1, 0);
  if (!strcmp(kind, "notables")) {
    hid_t d = H5Dopen2(f, "sparse", H5P_DEFAULT);
    H5Adelete(d, "table_sizes");
    H5Dclose(d);
  }
  H5Fclose(f);
  return 0;
}

#include "data/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check_hdf5.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/h5util.h"

enum { MAX_TMP = 8 };
static char *g_tmp[MAX_TMP];
static int g_atexit;

static void remove_tmp(void) {
  for (int i = 0; i < MAX_TMP; i++)
    if (g_tmp[i]) unlink(g_tmp[i]);
}

void cddp_tmpfile_register(const char *path) {
  if (!g_atexit) {
    atexit(remove_tmp);
    g_atexit = 1;
  }
  for (int i = 0; i < MAX_TMP; i++)
    if (!g_tmp[i]) {
      g_tmp[i] = strdup(path);
      return;
    }
  cddp_die(CDDP_EXIT_RUNTIME, "too many temporary files open");
}

void cddp_tmpfile_unregister(const char *path) {
  for (int i = 0; i < MAX_TMP; i++)
    if (g_tmp[i] && !strcmp(g_tmp[i], path)) {
      free(g_tmp[i]);
      g_tmp[i] = NULL;
    }
}

static void add_col(cddp_writer *w, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *rowdims,
                    hsize_t chunk_rows) {
  int c = w->ncols++;
  hsize_t dims[4] = {0}, maxd[4], chunk[4];
  size_t rb = H5Tget_size(ftype);
  for (int k = 1; k < rank; k++) {
    dims[k] = rowdims[k - 1];
    rb *= dims[k];
  }
  for (int k = 0; k < rank; k++) {
    maxd[k] = k ? dims[k] : H5S_UNLIMITED;
    chunk[k] = dims[k];
  }
  (void)rb;
  chunk[0] = chunk_rows;
  hid_t sp = h5Check(H5Screate_simple(rank, dims, maxd), CDDP_EXIT_RUNTIME, w->tmp_path);
  hid_t dcpl = h5Check(H5Pcreate(H5P_DATASET_CREATE), CDDP_EXIT_RUNTIME, w->tmp_path);
  h5Check(H5Pset_chunk(dcpl, rank, chunk), CDDP_EXIT_RUNTIME, w->tmp_path);
  /* Write every chunk in full so that readers can map rows directly. */
  h5Check(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR), CDDP_EXIT_RUNTIME, w->tmp_path);
  w->dset[c] = h5Check(H5Dcreate2(w->file, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                       CDDP_EXIT_RUNTIME, w->tmp_path);
  H5Pclose(dcpl);
  H5Sclose(sp);
  w->memtype[c] = mtype;
  w->rank[c] = rank;
  memcpy(w->row_dims[c], dims, sizeof dims);
}

cddp_writer *cddp_writer_create(const char *final_path, cddp_schema schema, const cddp_data_info *shape) {
  cddp_h5_quiet();
  cddp_writer *w = cddp_xcalloc(sizeof *w, "writer");
  w->final_path = strdup(final_path);
  size_t n = strlen(final_path) + 32;
  w->tmp_path = cddp_xmalloc(n, "path");
  snprintf(w->tmp_path, n, "%s.tmp-%ld", final_path, (long)getpid());
  cddp_tmpfile_register(w->tmp_path);
  w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (w->file < 0) cddp_die(CDDP_EXIT_RUNTIME, "%s: cannot create HDF5 file: %s", w->tmp_path, strerror(errno));
  cddp_h5_write_attr_str(w->tmp_path, w->file, "schema", cddp_schema_name(schema));
  /* One chunk height for all columns (about 1 MiB of the widest one), so a
   * block of rows maps onto one chunk per column. */
  size_t widest = schema == CDDP_SCHEMA_CTR        ? 4 * CDDP_CTR_SPARSE
                  : schema == CDDP_SCHEMA_TWOTOWER ? 4 * (size_t)(shape->hist_len > 1 ? shape->hist_len : 1)
                                                   : (size_t)shape->height * shape->width * shape->channels;
  hsize_t cr = (1u << 20) / (widest ? widest : 1);
  if (cr < 64) cr = 64;
  switch (schema) {
    case CDDP_SCHEMA_CTR: {
      hsize_t d13[1] = {CDDP_CTR_DENSE}, d26[1] = {CDDP_CTR_SPARSE};
      add_col(w, "label", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, NULL, cr);
      add_col(w, "dense", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d13, cr);
      add_col(w, "sparse", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d26, cr);
      break;
    }
    case CDDP_SCHEMA_TWOTOWER: {
      hsize_t dh[1] = {(hsize_t)shape->hist_len};
      add_col(w, "user_id", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, NULL, cr);
      add_col(w, "user_hist", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dh, cr);
      add_col(w, "item_id", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, NULL, cr);
      add_col(w, "item_cat", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, NULL, cr);
      break;
    }
    case CDDP_SCHEMA_IMAGE: {
      hsize_t di[3] = {(hsize_t)shape->height, (hsize_t)shape->width, (hsize_t)shape->channels};
      add_col(w, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, di, cr);
      add_col(w, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, NULL, cr);
      break;
    }
  }
  return w;
}

void cddp_writer_append(cddp_writer *w, int c, const void *rows, int64_t n) {
  if (n <= 0) return;
  hsize_t *d = w->row_dims[c];
  hsize_t start[4] = {d[0]}, count[4];
  for (int k = 0; k < w->rank[c]; k++) count[k] = d[k];
  count[0] = (hsize_t)n;
  d[0] += (hsize_t)n;
  h5Check(H5Dset_extent(w->dset[c], d), CDDP_EXIT_RUNTIME, w->tmp_path);
  hid_t fsp = h5Check(H5Dget_space(w->dset[c]), CDDP_EXIT_RUNTIME, w->tmp_path);
  h5Check(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL), CDDP_EXIT_RUNTIME, w->tmp_path);
  hid_t msp = h5Check(H5Screate_simple(w->rank[c], count, NULL), CDDP_EXIT_RUNTIME, w->tmp_path);
  if (H5Dwrite(w->dset[c], w->memtype[c], msp, fsp, H5P_DEFAULT, rows) < 0)
    cddp_die(CDDP_EXIT_RUNTIME, "%s: cannot write rows (disk full?)", w->tmp_path);
  H5Sclose(msp);
  H5Sclose(fsp);
}

static void close_all(cddp_writer *w) {
  for (int c = 0; c < w->ncols; c++) H5Dclose(w->dset[c]);
  if (H5Fclose(w->file) < 0) cddp_die(CDDP_EXIT_RUNTIME, "%s: cannot close HDF5 file (disk full?)", w->tmp_path);
}

static void free_w(cddp_writer *w) {
  cddp_tmpfile_unregister(w->tmp_path);
  free(w->final_path);
  free(w->tmp_path);
  free(w);
}

void cddp_writer_commit(cddp_writer *w, const cddp_data_info *info) {
  for (int c = 1; c < w->ncols; c++)
    if (w->row_dims[c][0] != w->row_dims[0][0])
      cddp_die(CDDP_EXIT_RUNTIME, "%s: internal error: columns have different row counts", w->tmp_path);
  switch (info->schema) {
    case CDDP_SCHEMA_CTR:
      cddp_h5_write_attr_i64(w->tmp_path, w->dset[CDDP_CTR_SPARSE_COL], "table_sizes", info->table_sizes,
                             CDDP_CTR_SPARSE);
      break;
    case CDDP_SCHEMA_TWOTOWER:
      cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_users", &info->num_users, 1);
      cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_items", &info->num_items, 1);
      cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_cats", &info->num_cats, 1);
      break;
    case CDDP_SCHEMA_IMAGE: {
      int64_t nc = info->num_classes;
      cddp_h5_write_attr_i64(w->tmp_path, w->file, "num_classes", &nc, 1);
      break;
    }
  }
  close_all(w);
  if (rename(w->tmp_path, w->final_path) != 0)
    cddp_die(CDDP_EXIT_RUNTIME, "cannot rename %s to %s: %s", w->tmp_path, w->final_path, strerror(errno));
  free_w(w);
}

void cddp_writer_abort(cddp_writer *w) {
  for (int c = 0; c < w->ncols; c++) H5Dclose(w->dset[c]);
  H5Fclose(w->file);
  unlink(w->tmp_path);
  free_w(w);
}

#include "data/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check_hdf5.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/h5util.h"
#include "data/schema.h"

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
  const cddp_schema_desc *sd = cddp_schema_get(schema);
  cddp_h5_write_attr_str(w->tmp_path, w->file, "schema", sd->name);
  /* Each column's row shape: fixed extents, the rest from shape. */
  hsize_t dims[CDDP_DS_MAX_COLS][3];
  size_t widest = 1;
  for (int c = 0; c < sd->ncols; c++) {
    const cddp_col_spec *s = &sd->cols[c];
    size_t rb = s->size;
    for (int k = 0; k + 1 < s->rank; k++) {
      dims[c][k] = s->from[k] ? (hsize_t) * (const int *)((const char *)shape + s->from[k] - 1) : s->dims[k];
      rb *= dims[c][k];
    }
    if (rb > widest) widest = rb;
  }
  /* One chunk height for all columns (about 1 MiB of the widest one), so a
   * block of rows maps onto one chunk per column. */
  hsize_t cr = (1u << 20) / widest;
  if (cr < 64) cr = 64;
  for (int c = 0; c < sd->ncols; c++) {
    const cddp_col_spec *s = &sd->cols[c];
    int is_float = s->cls == H5T_FLOAT, is_u8 = s->size == 1;
    add_col(w, s->name, is_float ? H5T_IEEE_F32LE : is_u8 ? H5T_STD_U8LE : H5T_STD_I32LE,
            is_float ? H5T_NATIVE_FLOAT : is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT32, s->rank, dims[c], cr);
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
  cddp_schema_get(info->schema)->write_attrs(w, info);
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

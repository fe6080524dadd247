/* Writing a cddp dataset safely: the file is created under a temporary name
 * in the destination directory ("<out>.tmp-<pid>"), filled by appending rows,
 * and renamed onto the final name only by cddp_writer_commit. If the process
 * ends any other way (cddp_die, exit) the temporary file is removed by an
 * atexit handler, so a half-written file never appears under the final name.
 * Datasets are chunked by rows (about 1 MiB per chunk), uncompressed, with an
 * unlimited first axis. */
#ifndef CDDP_DATA_WRITER_H
#define CDDP_DATA_WRITER_H

#include <hdf5.h>
#include <stdint.h>

#include "data/batch.h"

typedef struct {
  char *final_path, *tmp_path;
  hid_t file;
  int ncols;
  hid_t dset[4];
  hid_t memtype[4];
  int rank[4];
  hsize_t row_dims[4][4]; /* full dims, [0] = rows written so far */
} cddp_writer;

/* shape: hist_len for twotower; height, width, channels for images. */
cddp_writer *cddp_writer_create(const char *final_path, cddp_schema schema, const cddp_data_info *shape);
/* Appends n rows to column c (column numbers of data/dataset.h). */
void cddp_writer_append(cddp_writer *w, int c, const void *rows, int64_t n);
/* Writes the schema attributes from info (table_sizes, num_*), checks that all
 * columns have the same row count, closes and renames. Frees w. */
void cddp_writer_commit(cddp_writer *w, const cddp_data_info *info);
/* Closes and deletes the temporary file. Frees w. */
void cddp_writer_abort(cddp_writer *w);

/* Registers/unregisters a path removed at exit unless unregistered
 * (also used by the converter for its validation output). */
void cddp_tmpfile_register(const char *path);
void cddp_tmpfile_unregister(const char *path);

#endif

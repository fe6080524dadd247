/* A cddp HDF5 dataset opened for reading: schema validation at open and row
 * reads by global row index.
 *
 * Open checks (each failure: "<file>: <problem>", exit 3): the file exists
 * and is HDF5, the root attribute `schema` names a known schema, every
 * dataset of the schema exists with the right type class, size and sign, the
 * right rank and row shape, all datasets have the same (non-zero) number of
 * rows, and the schema's attributes (table_sizes, num_users/num_items/
 * num_cats, num_classes) exist and are positive (DESIGN §6).
 *
 * Reads: when a dataset is stored little-endian, unfiltered, contiguous or
 * chunked by whole rows (what cddp and plain h5py write), rows are copied
 * straight out of a read-only mmap of the file; the chunk addresses are
 * looked up once at open. Anything else (compression, byte-swapped types,
 * chunks that split a row) is read through HDF5 with a chunk cache, one
 * hyperslab per run of consecutive sorted rows. Reading does not call HDF5 on
 * the fast path, so a loader thread never contends with HDF5 calls of the
 * main thread (e.g. checkpoint writing). */
#ifndef CDDP_DATA_DATASET_H
#define CDDP_DATA_DATASET_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "data/batch.h"

#define CDDP_DS_MAX_COLS 4

/* Column numbers per schema. */
enum { CDDP_CTR_LABEL = 0, CDDP_CTR_DENSE_COL = 1, CDDP_CTR_SPARSE_COL = 2 };
enum { CDDP_TT_USER = 0, CDDP_TT_HIST = 1, CDDP_TT_ITEM = 2, CDDP_TT_CAT = 3 };
enum { CDDP_IMG_IMAGES = 0, CDDP_IMG_LABELS = 1 };

typedef struct {
  const char *name;
  hid_t id;
  hid_t memtype;          /* native type rows are delivered in */
  size_t row_bytes;       /* bytes of one row in memory */
  int64_t chunk_rows;     /* 0: contiguous */
  int direct;             /* 1: rows come from the mmap */
  uint64_t base;          /* contiguous: file offset of row 0 */
  uint64_t *chunk_addr;   /* chunked: file offset of chunk k (rows k*chunk_rows...) */
  int64_t nchunks;
} cddp_ds_col;

typedef struct {
  char *path;
  hid_t file;
  cddp_data_info info;
  int ncols;
  cddp_ds_col col[CDDP_DS_MAX_COLS];
  const uint8_t *map;     /* read-only mmap of the whole file, or NULL */
  size_t map_len;
  int64_t chunk_rows;     /* smallest chunk height of the datasets, 0 if none chunked (block shuffle default) */
} cddp_dataset;

/* Opens and validates; never returns on a problem. */
cddp_dataset *cddp_dataset_open(const char *path);
void cddp_dataset_close(cddp_dataset *d);

/* Copies rows rows[0..n) of column c into dst ([n, row_bytes], row i at
 * position i). scratch must hold cddp_dataset_scratch_bytes (used only by
 * the HDF5 path). */
void cddp_dataset_read(cddp_dataset *d, int c, const int64_t *rows, int n, void *dst, void *scratch);
/* The same, visiting the rows in the order given by order (a permutation of
 * 0..n-1, e.g. ascending row from cddp_dataset_sort_order; NULL = 0..n-1).
 * The order changes speed, not the result. */
void cddp_dataset_read_ordered(cddp_dataset *d, int c, const int64_t *rows, const uint32_t *order, int n,
                               void *dst, void *scratch);
/* order[k] = position of the k-th smallest of rows[0..n); tmp holds 2n uint64. */
void cddp_dataset_sort_order(const int64_t *rows, int n, uint32_t *order, uint64_t *tmp);
size_t cddp_dataset_scratch_bytes(const cddp_dataset *d, int n);

#endif

/* libFuzzer target: the HDF5 dataset reader (schema validation at open, then
 * the first, a middle and the last row of every column, through the mmap
 * fast path or HDF5 as the file's layout decides). The input is an HDF5 file. */
#include "data/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_init();
  return 0;
}

/* Buffers as the loader sizes them (a huge row declared by the file makes
 * cddp_xmalloc die "out of host memory", as the loader would). */
static void read_rows(cddp_dataset *d) {
  int64_t rows[3] = {0, d->info.rows / 2, d->info.rows - 1};
  void *scratch = cddp_xmalloc(cddp_dataset_scratch_bytes(d, 3), "scratch");
  for (int c = 0; c < d->ncols; c++) {
    void *dst = cddp_xmalloc(3 * d->col[c].row_bytes, "rows");
    cddp_dataset_read(d, c, rows, 3, dst, scratch);
    free(dst);
  }
  free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_path("data.h5");
  fz_write(path, data, size);
  cddp_dataset *d = NULL;
  FZ_RUN(d = cddp_dataset_open(path); read_rows(d); cddp_dataset_close(d), (void)0);
  fz_remove_files();
  return 0;
}

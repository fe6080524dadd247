/* libFuzzer target: the IDX (MNIST) reader of `cddp convert idx`. The input
 * holds both files: a 2-byte big-endian length L, then L bytes of the images
 * file, then the labels file (plain or gzip, as the reader accepts). */
#include "core/log.h"
#include "data/convert.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_init();
  cddp_log_set_quiet(1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t l = (size_t)data[0] << 8 | data[1];
  if (l > size - 2) l = size - 2;
  const char *img = fz_path("images.idx"), *lab = fz_path("labels.idx"), *out = fz_path("idx.h5");
  fz_write(img, data + 2, l);
  fz_write(lab, data + 2 + l, size - 2 - l);
  FZ_RUN(cddp_convert_idx(img, lab, out, 0), fz_forget_writer(out));
  fz_remove_files();
  return 0;
}

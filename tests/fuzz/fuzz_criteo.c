/* libFuzzer target: the Criteo TSV parser. The input is a TSV file: every
 * line goes through cddp_criteo_parse_line, then the whole file through
 * cddp_convert_criteo (line splitting, gzip when the input is gzip, the
 * hashing and the HDF5 writer), once failing on the first bad line and once
 * with --on-bad-line skip and a validation split. */
#include <string.h>

#include "core/log.h"
#include "data/convert.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fz_init();
  cddp_log_set_quiet(1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    uint8_t label, missing[39];
    int64_t ints[13];
    uint32_t hex[26];
    char why[CDDP_CRITEO_WHY];
    /* a private copy, so that reading one byte past the line is caught */
    size_t n = (size_t)(e - p);
    char *line = malloc(n ? n : 1);
    memcpy(line, p, n);
    cddp_criteo_parse_line(line, line + n, &label, ints, hex, missing, why);
    free(line);
    p = nl ? nl + 1 : end;
  }
  const char *in = fz_path("criteo.tsv"), *out = fz_path("criteo.h5"), *val = fz_path("criteo-val.h5");
  fz_write(in, data, size);
  for (int skip = 0; skip < 2; skip++) {
    cddp_criteo_opts o = {.table_size = 1000, .skip_bad = skip, .val_fraction = skip ? 0.25 : 0, .val_out = val,
                          .seed = 1, .quiet = 1};
    FZ_RUN(cddp_convert_criteo(in, out, &o), fz_forget_writer(out); fz_forget_writer(val));
  }
  fz_remove_files();
  return 0;
}

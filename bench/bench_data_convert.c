/* Converter throughput: MB/s of raw Criteo TSV per core (single thread).
 *   bench_data_convert [--rows N (2000000)] [--dir DIR (/tmp)] [--reps R (3)] [--keep]
 * Generates a Criteo-layout TSV with `cddp gen ctr --format tsv` semantics
 * (plain and gzip), converts it R times in hash mode and once with
 * --min-count 2, and prints the best MB/s of uncompressed text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "data/convert.h"
#include "data/gen.h"

int main(int argc, char **argv) {
  int64_t rows = 2000000;
  int reps = 3, keep = 0;
  const char *dir = "/tmp";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--keep")) keep = 1;
    else {
      fprintf(stderr, "usage: bench_data_convert [--rows N] [--dir DIR] [--reps R] [--keep]\n");
      return 2;
    }
  }
  cddp_log_set_quiet(1);
  char tsv[1024], gz[1040], out[1024];
  snprintf(tsv, sizeof tsv, "%s/bench_criteo_%lld.tsv", dir, (long long)rows);
  snprintf(gz, sizeof gz, "%s.gz", tsv);
  snprintf(out, sizeof out, "%s/bench_criteo_%lld.h5", dir, (long long)rows);
  cddp_gen_opts g;
  cddp_gen_defaults(&g);
  g.rows = rows;
  g.seed = 1;
  g.tsv = 1;
  g.table_size = 1000000;
  g.quiet = 1;
  if (access(tsv, R_OK)) cddp_gen_ctr(tsv, &g);
  if (access(gz, R_OK)) cddp_gen_ctr(gz, &g);
  const struct {
    const char *name, *in;
    int64_t min_count;
  } cases[] = {{"plain, hash", tsv, 0}, {"gzip, hash", gz, 0}, {"plain, --min-count 2 (2 passes)", tsv, 2}};
  printf("converter: %lld rows of Criteo TSV, single thread\n", (long long)rows);
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    double best = 0, mb = 0;
    for (int r = 0; r < (cases[c].min_count ? 1 : reps); r++) {
      cddp_criteo_opts o = {.table_size = 1000000, .min_count = cases[c].min_count, .quiet = 1};
      cddp_criteo_stats s = cddp_convert_criteo(cases[c].in, out, &o);
      mb = s.bytes / 1e6;
      double rate = mb / s.seconds;
      if (rate > best) best = rate;
    }
    if (cases[c].min_count) best *= 2; /* two passes over the text */
    printf("  %-34s %8.1f MB text  %8.1f MB/s%s\n", cases[c].name, mb, best,
           cases[c].min_count ? " (text read per pass)" : "");
  }
  if (!keep) {
    unlink(tsv);
    unlink(gz);
  }
  unlink(out);
  return 0;
}

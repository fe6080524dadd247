/* cddp_data_tool: the data subcommands of cddp (convert, gen, info) without
 * the trainer, plus `load` to push a file through the loader, for the data
 * tests and benchmarks.
 *   cddp_data_tool load FILE [--world W] [--rank R] [--batch B] [--shuffle none|full|block]
 *                  [--eval contiguous|strided] [--epochs E] [--max-table-rows M] [--threads T]
 * prints "rows N sum S" where S is a checksum of every value read.
 *   cddp_data_tool mkbad KIND OUT.h5   (mkbad.c: broken files for the tests) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/error.h"
#include "data/loader.h"

static int cmd_load(int argc, char **argv) {
  if (argc < 2) return CDDP_EXIT_USAGE;
  cddp_loader_opts o = {.world = 1, .batch = 64, .seed = 1};
  int epochs = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--world")) o.world = atoi(v);
    else if (!strcmp(a, "--rank")) o.rank = atoi(v);
    else if (!strcmp(a, "--batch")) o.batch = atoi(v);
    else if (!strcmp(a, "--epochs")) epochs = atoi(v);
    else if (!strcmp(a, "--threads")) o.threads = atoi(v);
    else if (!strcmp(a, "--max-table-rows")) o.max_table_rows = atoll(v);
    else if (!strcmp(a, "--shuffle"))
      o.shuffle = !strcmp(v, "full") ? CDDP_SHUFFLE_FULL : !strcmp(v, "block") ? CDDP_SHUFFLE_BLOCK : CDDP_SHUFFLE_NONE;
    else if (!strcmp(a, "--eval")) o.eval = !strcmp(v, "strided") ? CDDP_EVAL_STRIDED : CDDP_EVAL_CONTIGUOUS;
    else return CDDP_EXIT_USAGE;
  }
  cddp_loader *l = cddp_loader_open(argv[1], &o);
  const cddp_data_info *in = cddp_loader_info(l);
  long long rows = 0;
  double sum = 0;
  for (int e = 0; e < epochs; e++) {
    cddp_loader_start_epoch(l, e);
    const cddp_batch *b;
    while ((b = cddp_loader_next(l))) {
      rows += b->n;
      for (int i = 0; i < b->n; i++) {
        if (b->label) {
          sum += b->label[i];
          for (int k = 0; k < 13; k++) sum += b->dense[i * 13 + k];
          for (int k = 0; k < 26; k++) sum += b->sparse[i * 26 + k];
        }
        if (b->user_id) {
          sum += b->user_id[i] + b->item_id[i] + b->item_cat[i];
          for (int k = 0; k < in->hist_len; k++) sum += b->user_hist[i * in->hist_len + k];
        }
        if (b->images) {
          sum += b->labels[i];
          size_t px = (size_t)in->height * in->width * in->channels;
          for (size_t k = 0; k < px; k++) sum += b->images[i * px + k];
        }
      }
    }
  }
  printf("rows %lld sum %.6f\n", rows, sum);
  cddp_loader_close(l);
  return 0;
}

int cddp_test_mkbad(const char *kind, const char *path); /* mkbad.c */

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: cddp_data_tool convert|gen|info|load ...\n");
    return CDDP_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "convert")) return cddp_cmd_convert(argc - 1, argv + 1);
  if (!strcmp(argv[1], "gen")) return cddp_cmd_gen(argc - 1, argv + 1);
  if (!strcmp(argv[1], "info")) return cddp_cmd_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "load")) return cmd_load(argc - 1, argv + 1);
  if (!strcmp(argv[1], "mkbad") && argc == 4) return cddp_test_mkbad(argv[2], argv[3]);
  fprintf(stderr, "cddp_data_tool: unknown command %s\n", argv[1]);
  return CDDP_EXIT_USAGE;
}

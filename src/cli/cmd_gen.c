/* cddp gen ctr|twotower|images OUT --rows N --seed S [...] */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "data/gen.h"

static const char *USAGE =
    "usage: cddp gen ctr|twotower|images OUT [--rows N] [--seed S] [options]   (defaults: 100000 rows, seed 0)\n"
    "  ctr:      --table-size T   cap on Criteo Kaggle's 26 cardinalities (default 10000)\n"
    "            --format h5|tsv  tsv writes raw Criteo-layout text (gzip when OUT ends in .gz)\n"
    "  twotower: --num-users U (2000) --num-items I (5000) --num-cats C (50) --hist-len H (20)\n"
    "  images:   --num-classes K (10) --height H (28) --width W (28) --channels C (1)\n"
    "  all:      --val-rows N     also write N validation rows from the same planted model (own row stream)\n"
    "            --val-out PATH   validation file (default OUT with -val before .h5)\n"
    "            --quiet\n";

int cddp_cmd_gen(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fprintf(argc < 2 ? stderr : stdout, "%s", USAGE);
    return argc < 2 ? CDDP_EXIT_USAGE : 0;
  }
  const char *kind = argv[1], *out = NULL;
  cddp_gen_opts o;
  cddp_gen_defaults(&o);
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
#define INT_OPT(name, field, lo, hi) \
  else if (!strcmp(a, name)) o.field = cddp_arg_i64(a, cddp_arg_value(argc, argv, &i), lo, hi)
    if (0) {
    }
    INT_OPT("--rows", rows, 1, INT64_MAX);
    INT_OPT("--table-size", table_size, 2, INT32_MAX);
    INT_OPT("--num-users", num_users, 1, INT32_MAX);
    INT_OPT("--num-items", num_items, 51, INT32_MAX);
    INT_OPT("--num-cats", num_cats, 1, INT32_MAX);
    INT_OPT("--hist-len", hist_len, 1, 10000);
    INT_OPT("--num-classes", num_classes, 2, 1000000);
    INT_OPT("--height", height, 4, 100000);
    INT_OPT("--width", width, 4, 100000);
    INT_OPT("--channels", channels, 1, 64);
    INT_OPT("--val-rows", val_rows, 1, INT64_MAX);
#undef INT_OPT
    else if (!strcmp(a, "--seed")) o.seed = (uint64_t)cddp_arg_i64(a, cddp_arg_value(argc, argv, &i), 0, INT64_MAX);
    else if (!strcmp(a, "--quiet")) o.quiet = 1;
    else if (!strcmp(a, "--val-out")) o.val_out = cddp_arg_value(argc, argv, &i);
    else if (!strcmp(a, "--format")) {
      const char *v = cddp_arg_value(argc, argv, &i);
      if (!strcmp(v, "tsv")) o.tsv = 1;
      else if (!strcmp(v, "h5")) o.tsv = 0;
      else {
        fprintf(stderr, "cddp gen: --format must be h5 or tsv, not '%s'\n", v);
        return CDDP_EXIT_USAGE;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "cddp gen: unknown option %s\n%s", a, USAGE);
      return CDDP_EXIT_USAGE;
    } else if (!out) out = a;
    else {
      fprintf(stderr, "cddp gen: more than one output file\n%s", USAGE);
      return CDDP_EXIT_USAGE;
    }
  }
  if (!out) {
    fprintf(stderr, "cddp gen: missing OUT\n%s", USAGE);
    return CDDP_EXIT_USAGE;
  }
  if (o.val_out && !o.val_rows) {
    fprintf(stderr, "cddp gen: --val-out needs --val-rows\n");
    return CDDP_EXIT_USAGE;
  }
  if (o.tsv && o.val_rows) {
    fprintf(stderr, "cddp gen: --val-rows needs h5 output, not --format tsv\n");
    return CDDP_EXIT_USAGE;
  }
  if (o.tsv && strcmp(kind, "ctr")) {
    fprintf(stderr, "cddp gen: --format tsv is only for ctr\n");
    return CDDP_EXIT_USAGE;
  }
  if (!strcmp(kind, "ctr")) cddp_gen_ctr(out, &o);
  else if (!strcmp(kind, "twotower")) cddp_gen_twotower(out, &o);
  else if (!strcmp(kind, "images")) cddp_gen_images(out, &o);
  else {
    fprintf(stderr, "cddp gen: unknown kind '%s' (ctr, twotower or images)\n%s", kind, USAGE);
    return CDDP_EXIT_USAGE;
  }
  return 0;
}

/* cddp convert criteo IN OUT.h5 | idx IMAGES LABELS OUT.h5 */
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "data/convert.h"

static const char *USAGE =
    "usage: cddp convert criteo IN.tsv[.gz] OUT.h5 [options]\n"
    "         --table-size N       hash each categorical column into N rows, id 0 = missing (default 1000000)\n"
    "         --min-count N        frequency dictionary instead: values seen >= N times get their own id,\n"
    "                              the rest share id 0 with missing values (reads the input twice)\n"
    "         --on-bad-line error|skip   stop at the first malformed line (default) or skip and count it\n"
    "         --val-fraction F     send each line to a validation file with probability F (deterministic)\n"
    "         --val-out PATH       validation file (default OUT with .h5 -> -val.h5)\n"
    "         --seed S             seed of the validation split (default 0)\n"
    "         --quiet\n"
    "       cddp convert idx IMAGES LABELS OUT.h5 [--num-classes K]   (MNIST IDX, plain or gzip)\n";

static int convert_criteo(int argc, char **argv) {
  cddp_criteo_opts o = {.table_size = CDDP_CRITEO_DEFAULT_TABLE};
  const char *pos[2];
  int np = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--table-size")) o.table_size = cddp_arg_i64(a, cddp_arg_value(argc, argv, &i), 2, INT32_MAX);
    else if (!strcmp(a, "--min-count")) o.min_count = cddp_arg_i64(a, cddp_arg_value(argc, argv, &i), 1, INT32_MAX);
    else if (!strcmp(a, "--val-fraction")) o.val_fraction = cddp_arg_f64(a, cddp_arg_value(argc, argv, &i), 0, 0.999999);
    else if (!strcmp(a, "--val-out")) o.val_out = cddp_arg_value(argc, argv, &i);
    else if (!strcmp(a, "--seed")) o.seed = (uint64_t)cddp_arg_i64(a, cddp_arg_value(argc, argv, &i), 0, INT64_MAX);
    else if (!strcmp(a, "--quiet")) o.quiet = 1;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf("%s", USAGE);
      return 0;
    }
    else if (!strcmp(a, "--on-bad-line")) {
      const char *v = cddp_arg_value(argc, argv, &i);
      if (!strcmp(v, "error")) o.skip_bad = 0;
      else if (!strcmp(v, "skip")) o.skip_bad = 1;
      else {
        fprintf(stderr, "cddp: --on-bad-line must be error or skip, not '%s'\n", v);
        return CDDP_EXIT_USAGE;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "cddp convert criteo: unknown option %s\n%s", a, USAGE);
      return CDDP_EXIT_USAGE;
    } else if (np < 2) pos[np++] = a;
    else {
      fprintf(stderr, "cddp convert criteo: too many arguments\n%s", USAGE);
      return CDDP_EXIT_USAGE;
    }
  }
  if (np != 2) {
    fprintf(stderr, "%s", USAGE);
    return CDDP_EXIT_USAGE;
  }
  if (o.val_out && o.val_fraction <= 0) {
    fprintf(stderr, "cddp: --val-out needs --val-fraction\n");
    return CDDP_EXIT_USAGE;
  }
  cddp_criteo_stats st = cddp_convert_criteo(pos[0], pos[1], &o);
  if (!o.quiet) {
    cddp_log_info("%s: %lld lines -> %lld rows, %lld validation rows, %lld skipped; %.1f MB in %.2f s (%.1f MB/s)",
                  pos[0], (long long)st.lines, (long long)st.rows, (long long)st.val_rows, (long long)st.skipped, st.bytes / 1e6, st.seconds,
                  st.bytes / 1e6 / (st.seconds > 0 ? st.seconds : 1e-9));
  }
  return 0;
}

static int convert_idx(int argc, char **argv) {
  const char *pos[3];
  int np = 0, nc = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--num-classes")) nc = (int)cddp_arg_i64(a, cddp_arg_value(argc, argv, &i), 2, 256);
    else if (!strcmp(a, "--quiet")) cddp_log_set_quiet(1);
    else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "cddp convert idx: unknown option %s\n%s", a, USAGE);
      return CDDP_EXIT_USAGE;
    } else if (np < 3) pos[np++] = a;
    else np = 4;
  }
  if (np != 3) {
    fprintf(stderr, "%s", USAGE);
    return CDDP_EXIT_USAGE;
  }
  cddp_convert_idx(pos[0], pos[1], pos[2], nc);
  return 0;
}

int cddp_cmd_convert(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "criteo")) return convert_criteo(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "idx")) return convert_idx(argc - 1, argv + 1);
  int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
  fprintf(help ? stdout : stderr, "%s", USAGE);
  return help ? 0 : CDDP_EXIT_USAGE;
}

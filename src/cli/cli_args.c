#include "cli/cli_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

const char *cddp_arg_value(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "cddp: option %s needs a value\n", argv[*i]);
    exit(CDDP_EXIT_USAGE);
  }
  return argv[++*i];
}

int64_t cddp_arg_i64(const char *opt, const char *s, int64_t lo, int64_t hi) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "cddp: %s: '%s' is not an integer in [%lld, %lld]\n", opt, s, (long long)lo, (long long)hi);
    exit(CDDP_EXIT_USAGE);
  }
  return v;
}

double cddp_arg_f64(const char *opt, const char *s, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "cddp: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
    exit(CDDP_EXIT_USAGE);
  }
  return v;
}

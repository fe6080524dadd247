/* Option parsing helpers of the data subcommands (convert, gen): exit 2 on
 * misuse. */
#ifndef CDDP_CLI_CLI_ARGS_H
#define CDDP_CLI_CLI_ARGS_H

#include <stdint.h>

/* Value of option argv[*i] (argv[*i + 1]); advances *i; exit 2 when missing. */
const char *cddp_arg_value(int argc, char **argv, int *i);
int64_t cddp_arg_i64(const char *opt, const char *s, int64_t lo, int64_t hi);
double cddp_arg_f64(const char *opt, const char *s, double lo, double hi);

#endif

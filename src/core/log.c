#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"

static int g_quiet;

void cddp_log_set_quiet(int quiet) { g_quiet = quiet; }

void cddp_log_info(const char *fmt, ...) {
  if (g_quiet || cddp_rank() > 0) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

void cddp_log_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (cddp_rank() >= 0) fprintf(stderr, "cddp: rank %d: warning: ", cddp_rank());
  else fprintf(stderr, "cddp: warning: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

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
  char msg[2048], shown[sizeof msg * 4];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cddp_escape(msg, sizeof msg, shown, sizeof shown, 1);
  if (cddp_rank() >= 0) fprintf(stderr, "cddp: rank %d: warning: %s\n", cddp_rank(), shown);
  else fprintf(stderr, "cddp: warning: %s\n", shown);
}

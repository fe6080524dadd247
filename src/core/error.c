#include "core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_rank = -1;
static cddp_abort_fn g_abort;

void cddp_set_rank(int rank) { g_rank = rank; }
int cddp_rank(void) { return g_rank; }
void cddp_set_abort_hook(cddp_abort_fn fn) { g_abort = fn; }

void cddp_die_at(int code, const char *file, int line, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (g_rank >= 0)
    fprintf(stderr, "cddp: rank %d: %s:%d: %s\n", g_rank, file, line, msg);
  else
    fprintf(stderr, "cddp: %s:%d: %s\n", file, line, msg);
  fflush(stderr);
  fflush(stdout);
  if (g_abort) g_abort(code);
  exit(code);
}

void *cddp_xmalloc(size_t n, const char *what) {
  void *p = malloc(n ? n : 1);
  if (!p) cddp_die(CDDP_EXIT_RUNTIME, "out of host memory allocating %zu bytes for %s", n, what);
  return p;
}

void *cddp_xcalloc(size_t n, const char *what) {
  void *p = calloc(1, n ? n : 1);
  if (!p) cddp_die(CDDP_EXIT_RUNTIME, "out of host memory allocating %zu bytes for %s", n, what);
  return p;
}

#include "core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_rank = -1;
static cddp_abort_fn g_abort;
static const char *g_usage_hint;

void cddp_set_rank(int rank) { g_rank = rank; }
int cddp_rank(void) { return g_rank; }
void cddp_set_abort_hook(cddp_abort_fn fn) { g_abort = fn; }
void cddp_set_usage_hint(const char *hint) { g_usage_hint = hint; }

size_t cddp_escape(const char *in, size_t n, char *out, size_t cap, int keep_newlines) {
  static const char hex[] = "0123456789abcdef";
  size_t k = 0;
  if (!cap) return 0;
  for (size_t i = 0; i < n && in[i]; i++) {
    unsigned char c = (unsigned char)in[i];
    char e[5] = {(char)c, 0};
    if ((c < 0x20 && !(c == '\n' && keep_newlines)) || c == 0x7f) {
      char named = c == '\r' ? 'r' : c == '\n' ? 'n' : c == '\t' ? 't' : 0;
      if (named) e[0] = '\\', e[1] = named, e[2] = 0;
      else e[0] = '\\', e[1] = 'x', e[2] = hex[c >> 4], e[3] = hex[c & 15], e[4] = 0;
    }
    size_t len = strlen(e);
    if (k + len >= cap) break;
    memcpy(out + k, e, len);
    k += len;
  }
  out[k] = 0;
  return k;
}

void cddp_die_at(int code, const char *file, int line, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* Messages quote file contents and flags: a stray \r or escape sequence
   * must not hide or rewrite the line on the user's terminal. */
  char shown[sizeof msg * 4];
  cddp_escape(msg, sizeof msg, shown, sizeof shown, 1);
  char where[320] = "";
  if (g_rank >= 0) snprintf(where, sizeof where, "rank %d: ", g_rank);
  /* A usage error is about the user's command line or config, not our code:
   * name the flag and point to --help instead of a source location. */
  if (code != CDDP_EXIT_USAGE)
    snprintf(where + strlen(where), sizeof where - strlen(where), "%s:%d: ", file, line);
  fprintf(stderr, "cddp: %s%s\n", where, shown);
  if (code == CDDP_EXIT_USAGE && g_usage_hint) fprintf(stderr, "cddp: see %s\n", g_usage_hint);
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

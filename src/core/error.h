/* Errors, exit codes and checked library calls.
 *
 * Every failure names the rank, the file and line of the failing call, the
 * call itself and the library's error string, then ends the whole job: the
 * abort hook (installed by src/ddp when MPI is up) calls MPI_Abort so that no
 * rank is left hanging. Checked-call macros for MPI, HDF5, CUDA, cuBLAS,
 * cuDNN and NCCL live in check_*.h so that this header needs no library. */
#ifndef CDDP_CORE_ERROR_H
#define CDDP_CORE_ERROR_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <stdnoreturn.h>

/* Exit codes (DESIGN §8). */
enum {
  CDDP_EXIT_OK = 0,
  CDDP_EXIT_RUNTIME = 1,  /* a library call or the system failed */
  CDDP_EXIT_USAGE = 2,    /* bad flag, option, configuration or mismatch across ranks */
  CDDP_EXIT_DATA = 3,     /* bad input data: file, schema, row, value */
  CDDP_EXIT_DIVERGED = 4, /* non-finite loss or parameters, or a collapsed fp16 loss scale */
  CDDP_EXIT_STOPPED = 75, /* stopped by a signal after writing a checkpoint: resumable
                             (EX_TEMPFAIL: "try again later") */
};

/* Rank used in messages; -1 before the process group exists. */
void cddp_set_rank(int rank);
int cddp_rank(void);

/* Called by cddp_die after printing, with the exit code; it must not return
 * (the DDP layer installs one that calls MPI_Abort). NULL restores exit(). */
typedef void (*cddp_abort_fn)(int code);
void cddp_set_abort_hook(cddp_abort_fn fn);

/* What a usage error points to, e.g. "cddp train --help" (set per command). */
void cddp_set_usage_hint(const char *hint);

/* Copies n bytes of in (stopping at a NUL) to out with control bytes written
 * as \r, \n, \t or \xNN; '\n' stays as is when keep_newlines. Always
 * NUL-terminates (truncating); returns the length written. */
size_t cddp_escape(const char *in, size_t n, char *out, size_t cap, int keep_newlines);

/* Print "cddp: rank R: file:line: message" to stderr and end the job. Usage
 * errors (CDDP_EXIT_USAGE) print "cddp: rank R: message" and the usage hint
 * instead of a source location. Control bytes in the message are escaped. */
noreturn void cddp_die_at(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define cddp_die(code, ...) cddp_die_at((code), __FILE__, __LINE__, __VA_ARGS__)

/* Library calls that return 0 on success and -1/NULL on failure. */
#define CDDP_CHECK_SYS(call)                                                        \
  do {                                                                              \
    if ((call) != 0) cddp_die(CDDP_EXIT_RUNTIME, "%s failed: %s", #call, strerror(errno)); \
  } while (0)

/* malloc that never returns NULL; only for set-up, never in the step loop. */
void *cddp_xmalloc(size_t n, const char *what);
void *cddp_xcalloc(size_t n, const char *what);

#endif

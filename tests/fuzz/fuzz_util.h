/* Shared by the libFuzzer targets: cddp_die() is how every reader rejects bad
 * input (a message and an exit code), so a target turns it into a return
 * from the input instead of an exit (libFuzzer counts an exit as a crash).
 * Only memory errors, undefined behaviour, hangs and allocations past
 * libFuzzer's limit are findings. */
#ifndef CDDP_TESTS_FUZZ_UTIL_H
#define CDDP_TESTS_FUZZ_UTIL_H

#include <glob.h>
#include <hdf5.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/error.h"
#include "data/writer.h"
#include "fuzz_reclaim.h"

static jmp_buf fz_jmp;

static void fz_die_hook(int code) { longjmp(fz_jmp, code ? code : 1); }

/* FZ_RUN(stmt, on_die): runs stmt; a cddp_die inside it returns here, runs
 * on_die, and releases what the reader still held (fuzz_reclaim.c). */
#define FZ_RUN(stmt, on_die)                   \
  do {                                         \
    volatile int fz_died_ = 1;                 \
    cddp_set_abort_hook(fz_die_hook);          \
    fz_track_begin();                          \
    if (setjmp(fz_jmp) == 0) {                 \
      stmt;                                    \
      fz_died_ = 0;                            \
    }                                          \
    cddp_set_abort_hook(NULL);                 \
    if (fz_died_) { on_die; }                  \
    fz_close_hdf5();                           \
    fz_track_end(fz_died_);                    \
  } while (0)

/* A die in the middle of an HDF5 read leaves its ids open; close them so
 * that the next input starts from a clean library state. */
static void fz_close_hdf5(void) {
  ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (n <= 0) return;
  hid_t *ids = malloc((size_t)n * sizeof *ids);
  if (!ids) abort();
  n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, (size_t)n, ids);
  for (ssize_t i = 0; i < n; i++) {
    H5I_type_t t = H5Iget_type(ids[i]);
    if (t == H5I_FILE) continue;
    while (H5Iis_valid(ids[i]) > 0 && H5Idec_ref(ids[i]) > 0) {}
  }
  for (ssize_t i = 0; i < n; i++)
    while (H5Iis_valid(ids[i]) > 0 && H5Idec_ref(ids[i]) > 0) {}
  free(ids);
}

/* Removes this process's scratch files (call at the end of an input). */
static void fz_remove_files(void) {
  char pat[64];
  snprintf(pat, sizeof pat, "/dev/shm/cddp-fuzz-%d-*", (int)getpid());
  glob_t g;
  if (glob(pat, 0, NULL, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
  globfree(&g);
}

/* Per-process scratch file in /dev/shm (tmpfs) for readers that take a path. */
static const char *fz_path(const char *tag) {
  static char buf[4][128];
  static int k;
  char *p = buf[k++ & 3];
  snprintf(p, sizeof buf[0], "/dev/shm/cddp-fuzz-%d-%s", (int)getpid(), tag);
  return p;
}

static void fz_write(const char *path, const uint8_t *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f)) {
    perror(path);
    abort();
  }
}

/* A writer that died leaves its temporary file "<out>.tmp-<pid>" registered
 * for removal at exit (which a longjmp skips): unregister it (the registry
 * has a few slots only) before its memory is released, and delete it. */
static void fz_forget_writer(const char *out) {
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
  cddp_tmpfile_unregister(tmp);
  unlink(tmp);
}

/* Quiet, signal-safe set-up common to all targets. */
static void fz_init(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

#endif

/* What a reader holds when cddp_die longjmps out of it: heap blocks, gzip
 * and stdio streams, file mappings and descriptors. The fuzz targets link
 * with --wrap for the allocation and stream calls of cddp's own code
 * (calls inside HDF5, zlib or libc are not redirected), so every block and
 * stream opened during an input is tracked until it is released; after a
 * die, fz_reclaim releases the rest. Without this each rejected input leaked
 * its buffers (megabytes for the Criteo converter) and descriptors, and a
 * fuzzing run ended in a false out-of-memory or "too many open files". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_reclaim.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
int __real_posix_memalign(void **p, size_t a, size_t n);
gzFile __real_gzopen(const char *path, const char *mode);
int __real_gzclose(gzFile f);
FILE *__real_fopen(const char *path, const char *mode);
int __real_fclose(FILE *f);
void *__real_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
int __real_munmap(void *a, size_t n);

/* kinds of tracked resources */
enum { R_HEAP = 1, R_GZ, R_FILE, R_MAP };
typedef struct {
  void *p;
  size_t n; /* mapping length */
  int kind;
} res;

enum { CAP = 1 << 16 };
static res g_res[CAP]; /* open addressing on the pointer; kind 0 = empty, -1 = removed */
static int g_on;
static size_t g_live;
static char g_fds[1024]; /* descriptors open before tracking began */

static size_t slot(const void *p) { return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 48; }

static void add(void *p, size_t n, int kind) {
  if (!g_on || !p) return;
  if (g_live * 2 > CAP) abort(); /* more live blocks than one input should ever hold */
  size_t i = slot(p);
  while (g_res[i].kind > 0) i = (i + 1) & (CAP - 1);
  g_res[i] = (res){p, n, kind};
  g_live++;
}

static void drop(const void *p) {
  if (!p || !g_live) return;
  for (size_t i = slot(p); g_res[i].kind != 0; i = (i + 1) & (CAP - 1))
    if (g_res[i].kind > 0 && g_res[i].p == p) {
      g_res[i].kind = -1;
      g_live--;
      return;
    }
}

void *__wrap_malloc(size_t n) { void *p = __real_malloc(n); add(p, 0, R_HEAP); return p; }
void *__wrap_calloc(size_t k, size_t n) { void *p = __real_calloc(k, n); add(p, 0, R_HEAP); return p; }
void *__wrap_realloc(void *p, size_t n) {
  void *q = __real_realloc(p, n);
  if (q || !n) drop(p);
  add(q, 0, R_HEAP);
  return q;
}
void __wrap_free(void *p) { drop(p); __real_free(p); }
char *__wrap_strdup(const char *s) { char *p = __real_strdup(s); add(p, 0, R_HEAP); return p; }
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
  int r = __real_posix_memalign(p, a, n);
  if (!r) add(*p, 0, R_HEAP);
  return r;
}
gzFile __wrap_gzopen(const char *path, const char *mode) {
  gzFile f = __real_gzopen(path, mode);
  add(f, 0, R_GZ);
  return f;
}
int __wrap_gzclose(gzFile f) { drop(f); return __real_gzclose(f); }
FILE *__wrap_fopen(const char *path, const char *mode) {
  FILE *f = __real_fopen(path, mode);
  add(f, 0, R_FILE);
  return f;
}
int __wrap_fclose(FILE *f) { drop(f); return __real_fclose(f); }
void *__wrap_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off) {
  void *p = __real_mmap(a, n, prot, flags, fd, off);
  if (p != MAP_FAILED) add(p, n, R_MAP);
  return p;
}
int __wrap_munmap(void *a, size_t n) { drop(a); return __real_munmap(a, n); }

static void scan_fds(char *open) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) abort();
  int self = dirfd(d);
  for (struct dirent *e; (e = readdir(d));) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] != '.' && fd != self && fd < (int)sizeof g_fds) open[fd] = 1;
  }
  closedir(d);
}

void fz_track_begin(void) {
  memset(g_fds, 0, sizeof g_fds);
  scan_fds(g_fds);
  g_on = 1;
}

void fz_track_end(int died) {
  g_on = 0;
  for (size_t i = 0; i < CAP; i++) {
    res r = g_res[i];
    g_res[i].kind = 0;
    if (!died || r.kind <= 0) continue;
    if (r.kind == R_HEAP) __real_free(r.p);
    else if (r.kind == R_GZ) __real_gzclose(r.p);
    else if (r.kind == R_FILE) __real_fclose(r.p);
    else __real_munmap(r.p, r.n);
  }
  g_live = 0;
  if (!died) return;
  char now[sizeof g_fds] = {0};
  scan_fds(now);
  for (int fd = 0; fd < (int)sizeof now; fd++)
    if (now[fd] && !g_fds[fd]) close(fd);
}

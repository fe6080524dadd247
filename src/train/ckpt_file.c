#include "train/ckpt_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "data/h5util.h"
#include "train/checkpoint.h"

#define TMP_PREFIX ".tmp-"

typedef struct {
  char *out;
  size_t cap;
} reason_ctx;

static herr_t find_reason(unsigned n, const H5E_error2_t *e, void *arg) {
  (void)n;
  reason_ctx *r = arg;
  const char *m = e->desc ? strstr(e->desc, "error message = '") : NULL;
  if (!m || r->out[0]) return 0;
  m += strlen("error message = '");
  const char *q = strchr(m, '\'');
  size_t len = q ? (size_t)(q - m) : strlen(m);
  if (len >= r->cap) len = r->cap - 1;
  memcpy(r->out, m, len);
  r->out[len] = 0;
  return 0;
}

const char *cddp_h5_os_reason(char *out, size_t cap) {
  reason_ctx r = {out, cap};
  out[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_reason, &r);
  return out;
}

static void cleanup(cddp_ckpt_file *cf) {
  if (cf->f >= 0) {
    H5E_BEGIN_TRY { H5Fclose(cf->f); }
    H5E_END_TRY;
    cf->f = -1;
  }
  if (cf->tmp[0]) unlink(cf->tmp);
  if (cf->tmpdir[0]) rmdir(cf->tmpdir);
}

void cddp_ckpt_file_fail(cddp_ckpt_file *cf, const char *what) {
  int err = errno;
  char reason[256];
  cddp_h5_os_reason(reason, sizeof reason);
  if (!reason[0] && err) snprintf(reason, sizeof reason, "%s", strerror(err));
  cleanup(cf);
  cddp_die(CDDP_EXIT_RUNTIME, "checkpoint %s: %s failed: %s (temporary file removed; earlier "
           "checkpoints are intact)", cf->fin, what, reason[0] ? reason : "HDF5 error");
}

hid_t cddp_ckpt_file_create(cddp_ckpt_file *cf, const char *dir, const char *name) {
  cddp_h5_quiet();
  cf->f = -1;
  cf->tmp[0] = 0;
  snprintf(cf->fin, sizeof cf->fin, "%s/%s", dir, name);
  snprintf(cf->tmpdir, sizeof cf->tmpdir, "%s/" TMP_PREFIX "%s-XXXXXX", dir, name);
  if (!mkdtemp(cf->tmpdir)) {
    cf->tmpdir[0] = 0;
    cddp_ckpt_file_fail(cf, "creating its temporary directory");
  }
  snprintf(cf->tmp, sizeof cf->tmp, "%s/%s", cf->tmpdir, name);
  H5Eclear2(H5E_DEFAULT);
  errno = 0;
  cf->f = ckCheck(cf, H5Fcreate(cf->tmp, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT));
  return cf->f;
}

static void fsync_path(cddp_ckpt_file *cf, const char *path, int dir) {
  int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_NOFOLLOW);
  if (fd < 0 || fsync(fd) != 0) {
    if (fd >= 0) close(fd);
    cddp_ckpt_file_fail(cf, dir ? "fsync of the directory" : "fsync");
  }
  close(fd);
}

void cddp_ckpt_file_commit(cddp_ckpt_file *cf) {
  ckCheck(cf, H5Fflush(cf->f, H5F_SCOPE_GLOBAL));
  hid_t f = cf->f;
  cf->f = -1; /* closed below, whatever happens */
  if (H5Fclose(f) < 0) cddp_ckpt_file_fail(cf, "H5Fclose");
  fsync_path(cf, cf->tmp, 0);
  if (rename(cf->tmp, cf->fin) != 0) cddp_ckpt_file_fail(cf, "rename into place");
  cf->tmp[0] = 0;
  rmdir(cf->tmpdir);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", cf->fin);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  cf->tmpdir[0] = 0;
  fsync_path(cf, slash ? dir : ".", 1);
}

void cddp_ckpt_file_dataset(cddp_ckpt_file *cf, hid_t loc, const char *name, hid_t file_type,
                            hid_t mem_type, int ndim, const hsize_t *dims, const void *data) {
  /* chunks of whole rows, about 64 MB (HDF5 allows at most 4 GB per chunk) */
  hsize_t chunk[8], row = H5Tget_size(file_type);
  for (int d = 1; d < ndim; d++) row *= dims[d], chunk[d] = dims[d];
  hsize_t rows = row ? ((hsize_t)64 << 20) / row : 1;
  chunk[0] = dims[0] < rows ? dims[0] : rows;
  for (int d = 0; d < ndim; d++)
    if (!chunk[d]) chunk[d] = 1;
  hid_t sp = ckCheck(cf, H5Screate_simple(ndim, dims, NULL));
  hid_t dcpl = ckCheck(cf, H5Pcreate(H5P_DATASET_CREATE));
  ckCheck(cf, H5Pset_chunk(dcpl, ndim, chunk));
  ckCheck(cf, H5Pset_fletcher32(dcpl));
  hid_t ds = ckCheck(cf, H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  ckCheck(cf, H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  ckCheck(cf, H5Dclose(ds));
  H5Pclose(dcpl);
  H5Sclose(sp);
}

int cddp_mkdir_p(const char *dir, char *at, size_t cap) {
  snprintf(at, cap, "%s", dir);
  for (char *c = at + 1;; c++) {
    if (*c == '/' || !*c) {
      char save = *c;
      *c = 0;
      if (mkdir(at, 0777) != 0 && errno != EEXIST) return errno;
      *c = save;
      if (!save) return 0;
    }
  }
}

void cddp_ckpt_check_dir(const char *dir) {
  char p[4096];
  int err = cddp_mkdir_p(dir, p, sizeof p);
  if (err) cddp_die(CDDP_EXIT_USAGE, "--checkpoint-dir %s: cannot create %s: %s", dir, p, strerror(err));
  snprintf(p, sizeof p, "%s/" TMP_PREFIX "probe-XXXXXX", dir);
  int fd = mkstemp(p);
  int ok = fd >= 0 && write(fd, "cddp", 4) == 4 && fsync(fd) == 0;
  err = errno;
  if (fd >= 0) close(fd), unlink(p);
  if (!ok)
    cddp_die(CDDP_EXIT_USAGE, "--checkpoint-dir %s: cannot write a file there: %s", dir,
             strerror(err));
}

void cddp_ckpt_remove_stale(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    /* only a real directory of ours is emptied; a file (the start-up probe)
     * or a link is removed itself, never followed */
    DIR *sub = NULL;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid()) sub = opendir(p);
    if (!sub) {
      unlink(p);
      continue;
    }
    struct dirent *f;
    while ((f = readdir(sub))) {
      if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, "..")) continue;
      char q[4400];
      snprintf(q, sizeof q, "%s/%s", p, f->d_name);
      unlink(q);
    }
    closedir(sub);
    rmdir(p);
  }
  closedir(d);
}

#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check_hdf5.h"
#include "core/error.h"
#include "core/log.h"
#include "data/h5util.h"
#include "train/ckpt_file.h"
#include "train/checkpoint_shard.h"

#define CKPT_FORMAT "cddp.checkpoint.v1"

void (*cddp_ckpt_test_hook)(int datasets_written);

static size_t max_numel(const cddp_params *ps) {
  size_t m = 1;
  for (int i = 0; i < ps->n; i++)
    if (ps->p[i].numel > m) m = ps->p[i].numel;
  return m;
}

static void write_dataset(cddp_ckpt_file *cf, hid_t loc, const char *name, const cddp_param *p,
                          const float *dev, float *host, const cddp_backend *be, int *count) {
  be->memcpy_d2h(host, dev, p->numel * sizeof(float), be->compute);
  be->stream_sync(be->compute);
  hsize_t dims[4];
  for (int d = 0; d < p->ndim; d++) dims[d] = (hsize_t)p->shape[d];
  cddp_ckpt_file_dataset(cf, loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, p->ndim, dims, host);
  ++*count;
  if (cddp_ckpt_test_hook) cddp_ckpt_test_hook(*count);
}

void cddp_ckpt_mkdir(const char *dir) {
  char at[4096];
  int err = cddp_mkdir_p(dir, at, sizeof at);
  if (err) cddp_die(CDDP_EXIT_RUNTIME, "--checkpoint-dir %s: cannot create %s: %s", dir, at, strerror(err));
}

void cddp_ckpt_write(const char *dir, const cddp_ckpt_meta *meta, const cddp_params *ps,
                     const cddp_optimizer *opt, char *out_path, size_t cap) {
  cddp_ckpt_mkdir(dir);
  char name[64];
  snprintf(name, sizeof name, "ckpt-%010lld.h5", (long long)meta->step);
  const cddp_backend *be = ps->be;
  float *host = cddp_xmalloc(max_numel(ps) * sizeof(float), "checkpoint staging");
  cddp_ckpt_file cf;
  hid_t f = cddp_ckpt_file_create(&cf, dir, name);
  const char *tmp = cf.tmp;
  hid_t gm = ckCheck(&cf, H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  int count = 0;
  char src[256];
  for (int i = 0; i < ps->n; i++) {
    if (ps->p[i].flags & CDDP_PARAM_SHARDED) {
      snprintf(src, sizeof src, "/model/%s", ps->p[i].name);
      cddp_ckpt_shard_vds(tmp, gm, ps->p[i].name, meta->step, meta->shards, i, &ps->p[i], src);
      continue;
    }
    write_dataset(&cf, gm, ps->p[i].name, &ps->p[i], cddp_param_data(ps, i), host, be, &count);
  }
  H5Gclose(gm);
  if (opt) {
    hid_t go = ckCheck(&cf, H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    for (int i = 0; i < ps->n; i++) {
      const char *names[2];
      float *ptrs[2];
      int ns = cddp_optimizer_param_states(opt, i, names, ptrs);
      if (!ns) continue;
      hid_t g = ckCheck(&cf, H5Gcreate2(go, ps->p[i].name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      for (int s = 0; s < ns; s++) {
        if (ps->p[i].flags & CDDP_PARAM_SHARDED) {
          snprintf(src, sizeof src, "/optimizer/%s/%s", ps->p[i].name, names[s]);
          cddp_ckpt_shard_vds(tmp, g, names[s], meta->step, meta->shards, i, &ps->p[i], src);
          continue;
        }
        write_dataset(&cf, g, names[s], &ps->p[i], ptrs[s], host, be, &count);
      }
      H5Gclose(g);
    }
    H5Gclose(go);
  }
  free(host);
  if (meta->extra_state && meta->extra_bytes && meta->extra_rows > 0) {
    hid_t gs = ckCheck(&cf, H5Gcreate2(f, "model_state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    hsize_t dims[2] = {(hsize_t)meta->extra_rows, (hsize_t)meta->extra_bytes};
    cddp_ckpt_file_dataset(&cf, gs, "extra", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, dims,
                           meta->extra_state);
    H5Gclose(gs);
    ++count;
    if (cddp_ckpt_test_hook) cddp_ckpt_test_hook(count);
  }
  cddp_h5_write_attr_str(tmp, f, "format", CKPT_FORMAT);
  int64_t ints[][1] = {{meta->step}, {meta->epoch}, {meta->position}, {meta->scaler_tracker},
                       {meta->optimizer_step}, {meta->seed}, {meta->world_size}};
  const char *inames[] = {"step", "epoch", "position", "scaler_tracker", "optimizer_step", "seed",
                          "world_size"};
  for (int i = 0; i < 7; i++) cddp_h5_write_attr_i64(tmp, f, inames[i], ints[i], 1);
  cddp_h5_write_attr_f64(tmp, f, "loss_scale", meta->loss_scale);
  cddp_h5_write_attr_str(tmp, f, "rng",
                         "derived: init from seed; sampler from seed + epoch; no other randomness");
  cddp_h5_write_attr_str(tmp, f, "model", meta->model);
  cddp_h5_write_attr_str(tmp, f, "variant", meta->variant);
  cddp_h5_write_attr_str(tmp, f, "config", meta->config ? meta->config : "");
  int64_t one = 1;
  cddp_h5_write_attr_i64(tmp, f, "complete", &one, 1);
  cddp_ckpt_file_commit(&cf);
  if (out_path) snprintf(out_path, cap, "%s", cf.fin);
}

/* Steps of the checkpoints in dir (sorted ascending); returns the count. */
static int list_ckpts(const char *dir, long long **steps_out) {
  DIR *d = opendir(dir);
  *steps_out = NULL;
  if (!d) return 0;
  int n = 0, cap = 0;
  long long *steps = NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    long long s;
    char tail[8];
    if (sscanf(e->d_name, "ckpt-%lld.%7s", &s, tail) == 2 && !strcmp(tail, "h5")) {
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        steps = realloc(steps, cap * sizeof *steps);
        if (!steps) cddp_die(CDDP_EXIT_RUNTIME, "out of memory listing %s", dir);
      }
      steps[n++] = s;
    }
  }
  closedir(d);
  for (int i = 1; i < n; i++) /* insertion sort: a handful of entries */
    for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
      long long t = steps[j];
      steps[j] = steps[j - 1];
      steps[j - 1] = t;
    }
  *steps_out = steps;
  return n;
}

/* Temp files of writers that died (only rank 0 writes, one file at a time). */
static void remove_stale_tmp(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (!strncmp(e->d_name, ".ckpt-", 6) && n > 7 && !strcmp(e->d_name + n - 7, ".h5.tmp")) {
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
  }
  closedir(d);
}

void cddp_ckpt_prune(const char *dir, int keep) {
  remove_stale_tmp(dir);
  cddp_ckpt_remove_stale(dir);
  long long *steps;
  int n = list_ckpts(dir, &steps);
  for (int i = 0; keep > 0 && i < n - keep; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/ckpt-%010lld.h5", dir, steps[i]);
    if (unlink(p) != 0 && errno != ENOENT)
      cddp_log_warn("checkpoint: cannot remove %s: %s", p, strerror(errno));
    cddp_ckpt_shard_remove(dir, steps[i]);
  }
  free(steps);
}

static int is_complete(const char *path) {
  cddp_h5_quiet();
  if (H5Fis_hdf5(path) <= 0) return 0;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return 0;
  int ok = H5Aexists(f, "complete") > 0 && H5Aexists(f, "format") > 0;
  H5Fclose(f);
  return ok;
}

int cddp_ckpt_find_latest(const char *dir, char *path, size_t cap) {
  long long *steps;
  int n = list_ckpts(dir, &steps), found = 0;
  for (int i = n - 1; i >= 0 && !found; i--) {
    snprintf(path, cap, "%s/ckpt-%010lld.h5", dir, steps[i]);
    char why[512];
    if (cddp_ckpt_verify(path, why, sizeof why)) found = 1;
    else cddp_log_warn("checkpoint %s is unusable (%s); %s", path, why,
                       i ? "falling back to the previous one" : "no earlier checkpoint");
  }
  free(steps);
  return found;
}

static double read_attr_f64(const char *path, hid_t f, const char *name) {
  double v = 0;
  hid_t a = h5Check(H5Aopen(f, name, H5P_DEFAULT), CDDP_EXIT_DATA, path);
  h5Check(H5Aread(a, H5T_NATIVE_DOUBLE, &v), CDDP_EXIT_DATA, path);
  H5Aclose(a);
  return v;
}

void cddp_ckpt_read_meta(const char *path, cddp_ckpt_meta *m) {
  hid_t f = cddp_h5_open_ro(path);
  char fmt[64];
  if (!cddp_h5_has_attr(f, "format")) cddp_die(CDDP_EXIT_DATA, "%s: not a cddp checkpoint", path);
  cddp_h5_attr_str(path, f, "format", fmt, sizeof fmt);
  if (strcmp(fmt, CKPT_FORMAT) != 0)
    cddp_die(CDDP_EXIT_DATA, "%s: checkpoint format '%s', expected '%s'", path, fmt, CKPT_FORMAT);
  if (!cddp_h5_has_attr(f, "complete"))
    cddp_die(CDDP_EXIT_DATA, "%s: incomplete checkpoint (no 'complete' attribute)", path);
  *m = (cddp_ckpt_meta){0};
  int64_t *dst[] = {&m->step, &m->epoch, &m->position, &m->scaler_tracker, &m->optimizer_step,
                    &m->seed, &m->world_size};
  const char *inames[] = {"step", "epoch", "position", "scaler_tracker", "optimizer_step", "seed",
                          "world_size"};
  for (int i = 0; i < 7; i++) cddp_h5_attr_i64(path, f, "/", inames[i], dst[i], 1);
  m->loss_scale = read_attr_f64(path, f, "loss_scale");
  cddp_h5_attr_str(path, f, "model", m->model, sizeof m->model);
  cddp_h5_attr_str(path, f, "variant", m->variant, sizeof m->variant);
  size_t cap = 1 << 18;
  m->config = cddp_xmalloc(cap, "checkpoint configuration");
  cddp_h5_attr_str(path, f, "config", m->config, cap);
  H5Fclose(f);
}

void cddp_ckpt_meta_free(cddp_ckpt_meta *m) {
  free(m->config);
  m->config = NULL;
}

static void read_dataset(const char *path, hid_t f, const char *dname, const cddp_param *p,
                         float *dev, float *host, const cddp_backend *be) {
  hid_t ds = H5Dopen2(f, dname, H5P_DEFAULT);
  if (ds < 0) cddp_die(CDDP_EXIT_USAGE, "%s: checkpoint has no dataset %s", path, dname);
  cddp_ckpt_shard_check_sources(path, ds, dname);
  hid_t sp = h5Check(H5Dget_space(ds), CDDP_EXIT_DATA, path);
  hsize_t dims[8];
  int nd = H5Sget_simple_extent_ndims(sp);
  int same = nd == p->ndim;
  if (nd > 0 && nd <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
  for (int d = 0; same && d < nd; d++)
    same = dims[d] == (hsize_t)(d ? p->shape[d] : cddp_param_global_dim0(p));
  if (!same) {
    char want[96] = "", got[96] = "";
    for (int d = 0; d < p->ndim; d++)
      snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "x" : "",
               (long long)(d ? p->shape[d] : cddp_param_global_dim0(p)));
    for (int d = 0; d < nd && d < 8; d++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", d ? "x" : "",
               (unsigned long long)dims[d]);
    cddp_die(CDDP_EXIT_USAGE, "%s: %s has shape %s, the model expects %s", path, dname, got, want);
  }
  if (p->flags & CDDP_PARAM_SHARDED) { /* this rank's rows of the whole table */
    if (p->numel) cddp_ckpt_shard_read_rows(path, ds, sp, p, host);
  } else {
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host) < 0)
      cddp_die(CDDP_EXIT_DATA, "%s: %s: checksum mismatch or unreadable data: the checkpoint is "
               "corrupt (--resume auto falls back to the previous one)", path, dname);
  }
  H5Sclose(sp);
  H5Dclose(ds);
  be->memcpy_h2d(dev, host, p->numel * sizeof(float), be->compute);
  be->stream_sync(be->compute);
}

/* Checksum state of dataset `name` under f: 1 Fletcher32, 0 none, -1 unreadable. */
static int has_checksum(hid_t f, const char *name) {
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t dcpl = H5Dget_create_plist(ds);
  int n = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1, found = 0;
  for (int i = 0; i < n; i++) {
    unsigned flags, cd[8];
    size_t ncd = 8;
    found |= H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL) == H5Z_FILTER_FLETCHER32;
  }
  if (dcpl >= 0) H5Pclose(dcpl);
  H5Dclose(ds);
  return n < 0 ? -1 : found;
}

typedef struct {
  char *why;
  size_t cap;
  void *buf;
  size_t buf_bytes;
  int datasets, checked;
} verify_ctx;

static herr_t verify_one(hid_t loc, const char *name, const H5O_info_t *info, void *arg) {
  verify_ctx *v = arg;
  if (info->type != H5O_TYPE_DATASET) return 0;
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1, t = ds >= 0 ? H5Dget_type(ds) : -1;
  hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  size_t es = t >= 0 ? H5Tget_size(t) : 0, bytes = np > 0 ? (size_t)np * es : 0;
  int ok = ds >= 0 && sp >= 0 && t >= 0 && np >= 0;
  if (ok && bytes > v->buf_bytes) {
    free(v->buf);
    v->buf = malloc(bytes);
    v->buf_bytes = v->buf ? bytes : 0;
    ok = v->buf != NULL;
  }
  if (ok && bytes) ok = H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->buf) >= 0;
  if (!ok) snprintf(v->why, v->cap, "/%s: checksum mismatch or unreadable data", name);
  v->datasets++;
  v->checked += ok && has_checksum(loc, name) == 1;
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  return ok ? 0 : 1;
}

int cddp_ckpt_verify(const char *path, char *why, size_t cap) {
  cddp_h5_quiet();
  why[0] = 0;
  if (!is_complete(path)) {
    snprintf(why, cap, "incomplete or not a cddp checkpoint");
    return 0;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    snprintf(why, cap, "HDF5 cannot open it");
    return 0;
  }
  verify_ctx v = {.why = why, .cap = cap};
  herr_t r = H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, verify_one, &v, H5O_INFO_BASIC);
  free(v.buf);
  H5Fclose(f);
  if (r != 0 && !why[0]) snprintf(why, cap, "its structure cannot be read");
  return r == 0;
}

void cddp_ckpt_load(const char *path, cddp_params *ps, cddp_optimizer *opt) {
  hid_t f = cddp_h5_open_ro(path);
  int k = 0; /* a dataset of this file (a shard's whole-table view has no filters of its own) */
  while (k < ps->n && (ps->p[k].flags & CDDP_PARAM_SHARDED)) k++;
  if (k < ps->n) { /* checkpoints of older cddp versions carry no checksums */
    char first[300];
    snprintf(first, sizeof first, "/model/%s", ps->p[k].name);
    if (has_checksum(f, first) == 0)
      cddp_log_warn("%s: no checksums (written by an older cddp): loaded without verification",
                    path);
  }
  const cddp_backend *be = ps->be;
  float *host = cddp_xmalloc(max_numel(ps) * sizeof(float), "checkpoint staging");
  char dname[256];
  for (int i = 0; i < ps->n; i++) {
    snprintf(dname, sizeof dname, "/model/%s", ps->p[i].name);
    read_dataset(path, f, dname, &ps->p[i], cddp_param_data(ps, i), host, be);
  }
  if (ps->half && ps->n_dense)
    be->cast(ps->half, ps->half_t, ps->master, CDDP_F32, ps->n_dense);
  if (opt) {
    for (int i = 0; i < ps->n; i++) {
      const char *names[2];
      float *ptrs[2];
      int ns = cddp_optimizer_param_states(opt, i, names, ptrs);
      for (int s = 0; s < ns; s++) {
        snprintf(dname, sizeof dname, "/optimizer/%s/%s", ps->p[i].name, names[s]);
        read_dataset(path, f, dname, &ps->p[i], ptrs[s], host, be);
      }
    }
    int64_t st;
    cddp_h5_attr_i64(path, f, "/", "optimizer_step", &st, 1);
    int st32 = (int)st;
    be->memcpy_h2d(opt->step, &st32, sizeof st32, be->compute);
    be->stream_sync(be->compute);
  }
  free(host);
  H5Fclose(f);
}

int cddp_ckpt_load_extra_state(const char *path, int rank, void *dst, size_t bytes) {
  hid_t f = cddp_h5_open_ro(path);
  if (H5Lexists(f, "model_state", H5P_DEFAULT) <= 0 ||
      H5Lexists(f, "model_state/extra", H5P_DEFAULT) <= 0) {
    H5Fclose(f);
    return 0;
  }
  hid_t ds = h5Check(H5Dopen2(f, "model_state/extra", H5P_DEFAULT), CDDP_EXIT_DATA, path);
  hid_t sp = h5Check(H5Dget_space(ds), CDDP_EXIT_DATA, path);
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 ||
      dims[0] <= (hsize_t)rank || dims[1] != (hsize_t)bytes)
    cddp_die(CDDP_EXIT_USAGE, "%s: /model_state/extra is %llux%llu bytes, rank %d of this model "
             "needs a row of %zu", path, (unsigned long long)dims[0],
             (unsigned long long)dims[1], rank, bytes);
  /* this rank's row only */
  hsize_t start[2] = {(hsize_t)rank, 0}, count[2] = {1, (hsize_t)bytes};
  h5Check(H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL), CDDP_EXIT_DATA, path);
  hid_t mem = h5Check(H5Screate_simple(2, count, NULL), CDDP_EXIT_RUNTIME, path);
  h5Check(H5Dread(ds, H5T_NATIVE_UINT8, mem, sp, H5P_DEFAULT, dst), CDDP_EXIT_DATA, path);
  H5Sclose(mem);
  H5Sclose(sp);
  H5Dclose(ds);
  H5Fclose(f);
  return 1;
}

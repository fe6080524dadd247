#include "train/checkpoint_shard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check_hdf5.h"
#include "core/error.h"
#include "core/log.h"
#include "data/h5util.h"
#include "train/ckpt_file.h"

static void shard_name(char *out, size_t cap, int64_t step, int rank) {
  snprintf(out, cap, "ckpt-%010lld-shard-%05d.h5", (long long)step, rank);
}

static void write_rows(cddp_ckpt_file *cf, hid_t loc, const char *name, const cddp_param *p,
                       const float *dev, const cddp_backend *be) {
  hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
  float *host = cddp_xmalloc(p->numel * sizeof(float), "shard staging");
  be->memcpy_d2h(host, dev, p->numel * sizeof(float), be->compute);
  be->stream_sync(be->compute);
  cddp_ckpt_file_dataset(cf, loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, host);
  free(host);
}

static hid_t group(cddp_ckpt_file *cf, hid_t loc, const char *name) {
  return ckCheck(cf, H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
}

void cddp_ckpt_shard_write(const char *dir, int64_t step, int rank, const cddp_params *ps,
                           const cddp_optimizer *opt) {
  int any = 0;
  for (int i = 0; i < ps->n; i++)
    any |= (ps->p[i].flags & CDDP_PARAM_SHARDED) && ps->p[i].numel;
  if (!any) return;
  char name[256];
  shard_name(name, sizeof name, step, rank);
  cddp_ckpt_file cf;
  hid_t f = cddp_ckpt_file_create(&cf, dir, name);
  hid_t gm = group(&cf, f, "model"), go = group(&cf, f, "optimizer");
  for (int i = 0; i < ps->n; i++) {
    const cddp_param *p = &ps->p[i];
    if (!(p->flags & CDDP_PARAM_SHARDED) || !p->numel) continue;
    write_rows(&cf, gm, p->name, p, cddp_param_data(ps, i), ps->be);
    const char *names[2];
    float *ptrs[2];
    int ns = opt ? cddp_optimizer_param_states(opt, i, names, ptrs) : 0;
    if (!ns) continue;
    hid_t g = group(&cf, go, p->name);
    for (int s = 0; s < ns; s++) write_rows(&cf, g, names[s], p, ptrs[s], ps->be);
    H5Gclose(g);
  }
  H5Gclose(go);
  H5Gclose(gm);
  int64_t r64 = rank;
  cddp_h5_write_attr_i64(cf.tmp, f, "rank", &r64, 1);
  cddp_ckpt_file_commit(&cf);
}

void cddp_ckpt_shard_vds(const char *path, hid_t loc, const char *dset, int64_t step,
                         const cddp_ckpt_shards *sh, int id, const cddp_param *p,
                         const char *src_dset) {
  hsize_t dims[2] = {(hsize_t)p->global_rows, (hsize_t)p->shape[1]};
  hid_t vs = h5Check(H5Screate_simple(2, dims, NULL), CDDP_EXIT_RUNTIME, path);
  hid_t dcpl = h5Check(H5Pcreate(H5P_DATASET_CREATE), CDDP_EXIT_RUNTIME, path);
  const int64_t *first = sh->first + (size_t)id * sh->world, *count = sh->count + (size_t)id * sh->world;
  int64_t covered = 0;
  for (int r = 0; r < sh->world; r++) {
    if (!count[r]) continue;
    hsize_t start[2] = {(hsize_t)first[r], 0}, cnt[2] = {(hsize_t)count[r], dims[1]};
    h5Check(H5Sselect_hyperslab(vs, H5S_SELECT_SET, start, NULL, cnt, NULL), CDDP_EXIT_RUNTIME,
            path);
    hid_t ss = h5Check(H5Screate_simple(2, cnt, NULL), CDDP_EXIT_RUNTIME, path);
    char src[256];
    shard_name(src, sizeof src, step, r);
    h5Check(H5Pset_virtual(dcpl, vs, src, src_dset, ss), CDDP_EXIT_RUNTIME, path);
    H5Sclose(ss);
    covered += count[r];
  }
  if (covered != p->global_rows)
    cddp_die(CDDP_EXIT_RUNTIME, "checkpoint: shards of %s cover %lld of %lld rows", p->name,
             (long long)covered, (long long)p->global_rows);
  h5Check(H5Sselect_all(vs), CDDP_EXIT_RUNTIME, path);
  hid_t ds = h5Check(H5Dcreate2(loc, dset, H5T_IEEE_F32LE, vs, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                     CDDP_EXIT_RUNTIME, path);
  h5Check(H5Dclose(ds), CDDP_EXIT_RUNTIME, path);
  H5Pclose(dcpl);
  H5Sclose(vs);
}

void cddp_ckpt_shard_read_rows(const char *path, hid_t ds, hid_t sp, const cddp_param *p,
                               float *host) {
  hsize_t start[2] = {(hsize_t)p->row_offset, 0}, cnt[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
  h5Check(H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, cnt, NULL), CDDP_EXIT_DATA, path);
  hid_t mem = h5Check(H5Screate_simple(2, cnt, NULL), CDDP_EXIT_RUNTIME, path);
  if (H5Dread(ds, H5T_NATIVE_FLOAT, mem, sp, H5P_DEFAULT, host) < 0)
    cddp_die(CDDP_EXIT_DATA, "%s: cannot read rows %lld..%lld of %s: its shard file is damaged "
             "(checksum mismatch) or unreadable", path, (long long)p->row_offset,
             (long long)(p->row_offset + p->shape[0]), p->name);
  H5Sclose(mem);
}

void cddp_ckpt_shard_check_sources(const char *path, hid_t ds, const char *dname) {
  hid_t dcpl = h5Check(H5Dget_create_plist(ds), CDDP_EXIT_DATA, path);
  if (H5Pget_layout(dcpl) == H5D_VIRTUAL) {
    size_t n = 0;
    h5Check(H5Pget_virtual_count(dcpl, &n), CDDP_EXIT_DATA, path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    for (size_t i = 0; i < n; i++) {
      char src[1024], full[8192];
      if (H5Pget_virtual_filename(dcpl, i, src, sizeof src) < 0)
        cddp_die(CDDP_EXIT_DATA, "%s: %s: unreadable virtual mapping %zu", path, dname, i);
      snprintf(full, sizeof full, "%s%s", src[0] == '/' ? "" : dir, src);
      if (access(full, R_OK) != 0)
        cddp_die(CDDP_EXIT_DATA, "%s: %s needs shard file %s: %s", path, dname, full,
                 strerror(errno));
    }
  }
  H5Pclose(dcpl);
}

void cddp_ckpt_shard_remove(const char *dir, long long step) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "ckpt-%010lld-shard-", step);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0 && errno != ENOENT)
      cddp_log_warn("checkpoint: cannot remove %s: %s", p, strerror(errno));
  }
  closedir(d);
}

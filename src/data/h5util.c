#include "data/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check_hdf5.h"
#include "core/error.h"

void cddp_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t cddp_h5_open_ro(const char *path) {
  cddp_h5_quiet();
  int fd = open(path, O_RDONLY);
  if (fd < 0) cddp_die(CDDP_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
  close(fd);
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) cddp_die(CDDP_EXIT_DATA, "%s: not an HDF5 file", path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) cddp_die(CDDP_EXIT_DATA, "%s: truncated or corrupt HDF5 file (HDF5 cannot open it)", path);
  return f;
}

int cddp_h5_has_attr(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

int cddp_h5_read_str_attr(hid_t a, hid_t t, char *out, size_t cap) {
  int rc = -1;
  hid_t mt = H5Tcopy(H5T_C_S1);
  if (mt < 0) return -1;
  if (H5Tis_variable_str(t) > 0) {
    char *s = NULL;
    if (H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Tset_cset(mt, H5Tget_cset(t)) >= 0 &&
        H5Aread(a, mt, &s) >= 0) {
      snprintf(out, cap, "%s", s ? s : "");
      rc = 0;
    }
    H5free_memory(s);
  } else {
    size_t n = H5Tget_size(t);
    char *buf = n ? calloc(n + 1, 1) : NULL;
    if (buf && H5Tset_size(mt, n) >= 0 && H5Aread(a, mt, buf) >= 0) {
      snprintf(out, cap, "%s", buf);
      rc = 0;
    }
    free(buf);
  }
  H5Tclose(mt);
  return rc;
}

void cddp_h5_attr_str(const char *path, hid_t obj, const char *name, char *out, size_t cap) {
  if (!cddp_h5_has_attr(obj, name))
    cddp_die(CDDP_EXIT_DATA, "%s: missing root attribute '%s' (not a cddp dataset?)", path, name);
  hid_t a = h5Check(H5Aopen(obj, name, H5P_DEFAULT), CDDP_EXIT_DATA, path);
  hid_t t = h5Check(H5Aget_type(a), CDDP_EXIT_DATA, path);
  hid_t sp = h5Check(H5Aget_space(a), CDDP_EXIT_DATA, path);
  if (H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
    cddp_die(CDDP_EXIT_DATA, "%s: attribute '%s' is not a single string", path, name);
  if (cddp_h5_read_str_attr(a, t, out, cap) != 0)
    cddp_die(CDDP_EXIT_DATA, "%s: cannot read string attribute '%s' (corrupt file?)", path, name);
  H5Sclose(sp);
  H5Tclose(t);
  H5Aclose(a);
}

void cddp_h5_attr_i64(const char *path, hid_t obj, const char *objname, const char *name,
                      int64_t *out, size_t n) {
  if (!cddp_h5_has_attr(obj, name))
    cddp_die(CDDP_EXIT_DATA, "%s: missing attribute '%s' on %s", path, name, objname);
  hid_t a = h5Check(H5Aopen(obj, name, H5P_DEFAULT), CDDP_EXIT_DATA, path);
  hid_t t = h5Check(H5Aget_type(a), CDDP_EXIT_DATA, path);
  hid_t sp = h5Check(H5Aget_space(a), CDDP_EXIT_DATA, path);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  if (H5Tget_class(t) != H5T_INTEGER)
    cddp_die(CDDP_EXIT_DATA, "%s: attribute '%s' on %s is not an integer", path, name, objname);
  if (np != (hssize_t)n)
    cddp_die(CDDP_EXIT_DATA, "%s: attribute '%s' on %s has %lld values, expected %zu", path, name,
             objname, (long long)np, n);
  h5Check(H5Aread(a, H5T_NATIVE_INT64, out), CDDP_EXIT_DATA, path);
  H5Sclose(sp);
  H5Tclose(t);
  H5Aclose(a);
}

static hid_t new_attr(const char *path, hid_t obj, const char *name, hid_t type, hid_t space) {
  if (H5Aexists(obj, name) > 0) h5Check(H5Adelete(obj, name), CDDP_EXIT_RUNTIME, path);
  return h5Check(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), CDDP_EXIT_RUNTIME, path);
}

void cddp_h5_write_attr_str(const char *path, hid_t obj, const char *name, const char *val) {
  hid_t t = h5Check(H5Tcopy(H5T_C_S1), CDDP_EXIT_RUNTIME, path);
  h5Check(H5Tset_size(t, strlen(val) + 1), CDDP_EXIT_RUNTIME, path);
  h5Check(H5Tset_strpad(t, H5T_STR_NULLTERM), CDDP_EXIT_RUNTIME, path);
  hid_t sp = h5Check(H5Screate(H5S_SCALAR), CDDP_EXIT_RUNTIME, path);
  hid_t a = new_attr(path, obj, name, t, sp);
  h5Check(H5Awrite(a, t, val), CDDP_EXIT_RUNTIME, path);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
}

void cddp_h5_write_attr_i64(const char *path, hid_t obj, const char *name, const int64_t *v, size_t n) {
  hsize_t d = n;
  hid_t sp = h5Check(n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL), CDDP_EXIT_RUNTIME, path);
  hid_t a = new_attr(path, obj, name, H5T_STD_I64LE, sp);
  h5Check(H5Awrite(a, H5T_NATIVE_INT64, v), CDDP_EXIT_RUNTIME, path);
  H5Aclose(a);
  H5Sclose(sp);
}

void cddp_h5_write_attr_f64(const char *path, hid_t obj, const char *name, double v) {
  hid_t sp = h5Check(H5Screate(H5S_SCALAR), CDDP_EXIT_RUNTIME, path);
  hid_t a = new_attr(path, obj, name, H5T_IEEE_F64LE, sp);
  h5Check(H5Awrite(a, H5T_NATIVE_DOUBLE, &v), CDDP_EXIT_RUNTIME, path);
  H5Aclose(a);
  H5Sclose(sp);
}

void cddp_h5_type_name(hid_t t, char *out, size_t cap) {
  size_t sz = H5Tget_size(t);
  switch (H5Tget_class(t)) {
    case H5T_INTEGER:
      snprintf(out, cap, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", sz * 8);
      break;
    case H5T_FLOAT: snprintf(out, cap, "float%zu", sz * 8); break;
    case H5T_STRING: snprintf(out, cap, "string"); break;
    case H5T_COMPOUND: snprintf(out, cap, "compound"); break;
    default: snprintf(out, cap, "non-numeric type"); break;
  }
}

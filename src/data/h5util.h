/* Small HDF5 helpers shared by the readers, writers and `cddp info`.
 * Every failure is one line "<file>: <problem>" and exit code 3 (bad data) or
 * 1 (the system failed), via cddp_die. */
#ifndef CDDP_DATA_H5UTIL_H
#define CDDP_DATA_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Switches HDF5's own error printing off for the calling thread (the error
 * stack is per thread in thread-safe builds). Idempotent. */
void cddp_h5_quiet(void);

/* Opens an existing file read-only, telling apart "no such file", "not an
 * HDF5 file" and "truncated or corrupt HDF5 file". */
hid_t cddp_h5_open_ro(const char *path);

/* 1 if the root (obj = file id) or object has attribute name. */
int cddp_h5_has_attr(hid_t obj, const char *name);
/* Reads a string attribute, fixed or variable length (h5py writes the
 * latter); dies if missing or not a string. */
void cddp_h5_attr_str(const char *path, hid_t obj, const char *name, char *out, size_t cap);
/* Reads string attribute a of file type t (fixed or variable length) into
 * out, truncating to cap; returns 0, or -1 if HDF5 cannot read it. */
int cddp_h5_read_str_attr(hid_t a, hid_t t, char *out, size_t cap);
/* Reads an integer attribute of exactly n elements (any integer type; n = 1
 * accepts a scalar); dies if missing, not integer, or a different size. */
void cddp_h5_attr_i64(const char *path, hid_t obj, const char *objname, const char *name,
                      int64_t *out, size_t n);

/* Writers: scalar/array attributes on obj. */
void cddp_h5_write_attr_str(const char *path, hid_t obj, const char *name, const char *val);
void cddp_h5_write_attr_i64(const char *path, hid_t obj, const char *name, const int64_t *v, size_t n);
void cddp_h5_write_attr_f64(const char *path, hid_t obj, const char *name, double v);

/* Human-readable name of a file datatype ("uint8", "float32", "int64", ...). */
void cddp_h5_type_name(hid_t type, char *out, size_t cap);

#endif

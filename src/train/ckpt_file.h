/* Writing one checkpoint file safely (DESIGN §7).
 *
 * The file is built in a fresh private directory, DIR/.tmp-NAME-XXXXXX
 * (mkdtemp: created atomically, mode 0700, unpredictable name), so no link
 * planted by anyone else can be followed: nothing at a fixed name is ever
 * opened for writing. It is fsynced, renamed over DIR/NAME (rename replaces
 * a link rather than following it) and the directory is fsynced. On any
 * failure the temporary file and directory are removed and the message gives
 * the operating system's reason (e.g. "No space left on device", read from
 * HDF5's error stack). Datasets are chunked with the Fletcher32 checksum
 * filter: HDF5 verifies every chunk on read. */
#ifndef CDDP_TRAIN_CKPT_FILE_H
#define CDDP_TRAIN_CKPT_FILE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdnoreturn.h>

typedef struct {
  char tmpdir[4096], tmp[4400], fin[4096];
  hid_t f;
} cddp_ckpt_file;

/* Creates DIR/.tmp-NAME-XXXXXX/NAME and returns its HDF5 file id (also cf->f). */
hid_t cddp_ckpt_file_create(cddp_ckpt_file *cf, const char *dir, const char *name);
/* Closes, fsyncs and renames the file to DIR/NAME; removes the temporary directory. */
void cddp_ckpt_file_commit(cddp_ckpt_file *cf);
/* Removes the temporary file and directory and ends the job (exit 1),
 * naming `what` and the OS reason. */
noreturn void cddp_ckpt_file_fail(cddp_ckpt_file *cf, const char *what);
/* A float32/uint8 dataset of ndim dims, chunked (at most ~64 MB per chunk)
 * with the Fletcher32 filter, written from host memory `data`. */
void cddp_ckpt_file_dataset(cddp_ckpt_file *cf, hid_t loc, const char *name, hid_t file_type,
                            hid_t mem_type, int ndim, const hsize_t *dims, const void *data);
/* Checked call inside a checkpoint write: cleans up and dies on failure. */
#define ckCheck(cf, call)                                              \
  ({                                                                   \
    __typeof__(call) _r = (call);                                      \
    if (_r < 0) cddp_ckpt_file_fail((cf), #call);                      \
    _r;                                                                \
  })

/* mkdir -p: 0, or the errno of the first component that could not be
 * created (its path left in at). */
int cddp_mkdir_p(const char *dir, char *at, size_t cap);
/* Start-up check: DIR can be created and a file written in it; otherwise
 * exit 2 with the OS reason, before any training. */
void cddp_ckpt_check_dir(const char *dir);
/* Removes the temporary directories of writers that died. */
void cddp_ckpt_remove_stale(const char *dir);
/* The OS reason HDF5 recorded on its error stack for the last failure
 * ("No space left on device"), or "" if none; returns out. */
const char *cddp_h5_os_reason(char *out, size_t cap);

#endif

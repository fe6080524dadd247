/* Prints an FNV-1a hash of every /model dataset of a cddp checkpoint (names
 * and float32 bits, in name order): resume tests compare these. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t h = 1469598103934665603ull;
static void mix(const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
}

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *op) {
  (void)info, (void)op;
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t sp = H5Dget_space(ds);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  float *buf = malloc(sizeof(float) * (size_t)(n ? n : 1));
  if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) return -1;
  mix(name, strlen(name) + 1);
  mix(buf, sizeof(float) * (size_t)n);
  free(buf);
  H5Sclose(sp);
  H5Dclose(ds);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CHECKPOINT.h5\n", argv[0]);
    return 2;
  }
  hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return 1;
  hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
  if (g < 0) return 1;
  if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, NULL) < 0) return 1;
  printf("%016llx\n", (unsigned long long)h);
  H5Gclose(g);
  H5Fclose(f);
  return 0;
}

/* ckpt_corrupt FILE DATASET: flips one byte in the middle of the first chunk
 * (or the contiguous data) of DATASET in place, as disk or transfer damage
 * would; the file stays a valid HDF5 file. Prints the byte offset. */
#include <hdf5.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ckpt_corrupt FILE DATASET\n");
    return 2;
  }
  hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = f >= 0 ? H5Dopen2(f, argv[2], H5P_DEFAULT) : -1;
  if (ds < 0) return 1;
  haddr_t addr = H5Dget_offset(ds); /* contiguous */
  hsize_t size = H5Dget_storage_size(ds);
  if (addr == HADDR_UNDEF) {
    hid_t sp = H5Dget_space(ds);
    hsize_t off[8] = {0};
    unsigned mask;
    if (H5Dget_chunk_info(ds, sp, 0, off, &mask, &addr, &size) < 0) return 1;
    H5Sclose(sp);
  }
  H5Dclose(ds);
  H5Fclose(f);
  long pos = (long)(addr + size / 2);
  FILE *fp = fopen(argv[1], "r+b");
  if (!fp || fseek(fp, pos, SEEK_SET) != 0) return 1;
  int c = fgetc(fp);
  if (c == EOF || fseek(fp, pos, SEEK_SET) != 0 || fputc(c ^ 0x5a, fp) == EOF || fclose(fp) != 0)
    return 1;
  printf("%ld\n", pos);
  return 0;
}

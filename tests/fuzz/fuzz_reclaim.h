/* Resource tracking for the fuzz targets (fuzz_reclaim.c). */
#ifndef CDDP_TESTS_FUZZ_RECLAIM_H
#define CDDP_TESTS_FUZZ_RECLAIM_H

/* Start tracking what cddp's code allocates and opens. */
void fz_track_begin(void);
/* Stop; if the input died, release everything still held and close the
 * descriptors opened since fz_track_begin. */
void fz_track_end(int died);

#endif

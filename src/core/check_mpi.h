/* Checked MPI calls: rank, file, line, the call and MPI's error string. */
#ifndef CDDP_CORE_CHECK_MPI_H
#define CDDP_CORE_CHECK_MPI_H
#include <mpi.h>
#include "core/error.h"

#define mpiCheck(call)                                                            \
  do {                                                                            \
    int _e = (call);                                                              \
    if (_e != MPI_SUCCESS) {                                                      \
      char _s[MPI_MAX_ERROR_STRING];                                              \
      int _l = 0;                                                                 \
      MPI_Error_string(_e, _s, &_l);                                              \
      cddp_die(CDDP_EXIT_RUNTIME, "MPI call %s failed: %s", #call, _s);           \
    }                                                                             \
  } while (0)
#endif

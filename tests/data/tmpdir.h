/* A scratch directory per data test executable: created by the cmocka group
 * set-up (mkdtemp under /tmp), removed with everything in it by the teardown. */
#ifndef CDDP_TESTS_DATA_TMPDIR_H
#define CDDP_TESTS_DATA_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char g_dir[256];

static int tmpdir_setup(const char *name) {
  snprintf(g_dir, sizeof g_dir, "/tmp/cddp_%s_XXXXXX", name);
  return mkdtemp(g_dir) ? 0 : -1;
}

static int tmpdir_teardown(void **st) {
  (void)st;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

#endif

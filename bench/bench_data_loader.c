/* Loader throughput: samples/s delivered to one rank (file in page cache).
 *   bench_data_loader [--rows N (4000000)] [--batch B (4096)] [--world W (1)]
 *                     [--epochs E (3)] [--threads T (1)] [--dir DIR (/tmp)] [--file F.h5] [--keep]
 * Generates a cddp.ctr.v1 file (unless --file), reads it once to warm the
 * page cache, then times E epochs per shuffle mode (full, block, none) as
 * rank 0 of W, with every value check on. Prints wall-clock samples/s and
 * samples per CPU-second of the process (independent of other load). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "data/gen.h"
#include "data/loader.h"

static double clk(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now(void) { return clk(CLOCK_MONOTONIC); }
/* CPU time of the whole process: the consumer blocks on a condition variable,
 * so this is essentially the loader thread's time; samples per CPU-second is
 * the figure that does not depend on other load on the machine. */
static double cpu(void) { return clk(CLOCK_PROCESS_CPUTIME_ID); }

int main(int argc, char **argv) {
  int64_t rows = 4000000;
  int batch = 4096, world = 1, epochs = 3, keep = 0, threads = 1;
  const char *dir = "/tmp", *file = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--world") && i + 1 < argc) world = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--file") && i + 1 < argc) file = argv[++i];
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--keep")) keep = 1;
    else {
      fprintf(stderr, "usage: bench_data_loader [--rows N] [--batch B] [--world W] [--epochs E] [--threads T] [--dir D] [--file F] [--keep]\n");
      return 2;
    }
  }
  cddp_log_set_quiet(1);
  char path[1024];
  if (file) snprintf(path, sizeof path, "%s", file);
  else {
    snprintf(path, sizeof path, "%s/bench_loader_ctr_%lld.h5", dir, (long long)rows);
    if (access(path, R_OK)) {
      cddp_gen_opts g;
      cddp_gen_defaults(&g);
      g.rows = rows;
      g.seed = 1;
      g.quiet = 1;
      g.table_size = 100000;
      cddp_gen_ctr(path, &g);
    }
  }
  const struct {
    const char *name;
    cddp_shuffle s;
  } modes[] = {{"full", CDDP_SHUFFLE_FULL}, {"block", CDDP_SHUFFLE_BLOCK}, {"none", CDDP_SHUFFLE_NONE}};
  printf("loader: %s, batch %d per rank, rank 0 of %d, %d loader thread%s, %d epochs per mode\n", path, batch, world,
         threads, threads == 1 ? "" : "s", epochs);
  for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
    cddp_loader_opts o = {.rank = 0, .world = world, .batch = batch, .seed = 1, .shuffle = modes[m].s, .prefetch = 4,
                          .threads = threads};
    cddp_loader *l = cddp_loader_open(path, &o);
    cddp_loader_start_epoch(l, 100); /* warm-up epoch: page cache and mappings */
    while (cddp_loader_next(l)) {
    }
    int64_t n = 0;
    double t0 = now(), c0 = cpu();
    for (int e = 0; e < epochs; e++) {
      cddp_loader_start_epoch(l, e);
      const cddp_batch *b;
      while ((b = cddp_loader_next(l))) n += b->n;
    }
    double dt = now() - t0, dc = cpu() - c0;
    printf("  shuffle %-6s %8.2f M samples/s per rank wall, %8.2f M samples per CPU-second (%lld samples, %.2f s)\n",
           modes[m].name, (double)n / dt / 1e6, (double)n / dc / 1e6, (long long)n, dt);
    cddp_loader_close(l);
  }
  if (!file && !keep) unlink(path);
  return 0;
}

/* Cost of one trace record (core/trace.h) with tracing inactive and active:
 * a begin/end span pair and an instant, averaged over many calls. Multiplied
 * by the events per step of a trace it bounds what --trace adds to a step
 * independently of the machine's load (bench/RESULTS.md, "Trace overhead").
 *   bench_trace_record [CALLS]   (default 2,000,000) */
#include <stdio.h>
#include <stdlib.h>

#include "core/trace.h"

static double per_call_ns(int active, long calls, int instant) {
  cddp_trace_set_active(active);
  double t0 = cddp_trace_now();
  for (long i = 0; i < calls; i++) {
    if (instant) {
      cddp_trace_instant(CDDP_TRACK_BUCKET, "ready", "param", -1, t0, 4);
    } else {
      cddp_trace_mark m = cddp_trace_begin();
      cddp_trace_end(m, CDDP_TRACK_COMPUTE, "forward", "blocks.", (int)(i & 7), 0);
    }
  }
  double ns = 1e9 * (cddp_trace_now() - t0) / (double)calls;
  cddp_trace_set_active(0);
  return ns;
}

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 2000000;
  cddp_trace_init(NULL, (size_t)1 << 19, 0);
  printf("trace record cost, %ld calls each (ns per call; the ring wraps, as in a long run)\n", calls);
  printf("  span (begin+end), tracing inactive: %6.1f ns\n", per_call_ns(0, calls, 0));
  printf("  span (begin+end), tracing active:   %6.1f ns\n", per_call_ns(1, calls, 0));
  printf("  instant,          tracing inactive: %6.1f ns\n", per_call_ns(0, calls, 1));
  printf("  instant,          tracing active:   %6.1f ns\n", per_call_ns(1, calls, 1));
  cddp_trace_shutdown();
  return 0;
}

/* Timeline tracing: Chrome trace-event JSON (Perfetto, chrome://tracing).
 *
 * A process records spans and instants into a ring of events allocated by
 * cddp_trace_init (set-up); recording allocates nothing and, while tracing
 * is inactive, costs one relaxed atomic load. Times are CLOCK_MONOTONIC
 * seconds (cddp_trace_now). Tracks become the JSON "tid"s of this process
 * (the caller's pid is its rank). On a device backend, cddp_trace_begin/end
 * also record an event pair on the compute stream, and cddp_trace_dev_* on
 * any stream: cddp_trace_flush_device turns them into spans on the GPU
 * tracks, timed by the device and placed on the host clock through a
 * reference event recorded at init.
 *
 * Names are stored as pointers: they must stay valid until cddp_trace_render
 * (string literals, parameter names). The ring keeps the newest events;
 * older ones are overwritten and counted (cddp_trace_dropped). Recording is
 * safe from several threads; init, render and flush are not concurrent with
 * recording. */
#ifndef CDDP_CORE_TRACE_H
#define CDDP_CORE_TRACE_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/ops.h"

enum {
  CDDP_TRACK_STEP = 1,        /* "step N" */
  CDDP_TRACK_COMPUTE = 2,     /* forward/backward and their layers, optimizer, gradient wait */
  CDDP_TRACK_DATA = 3,        /* waiting for the loader, host-to-device copy */
  CDDP_TRACK_COMM = 4,        /* collectives as the communication thread ran them */
  CDDP_TRACK_GPU_COMPUTE = 5, /* device times on the compute stream */
  CDDP_TRACK_GPU_COPY = 6,    /* device times on the copy stream */
  CDDP_TRACK_GPU_COMM = 7,    /* device times on the communication stream */
  CDDP_TRACK_SPARSE = 100,    /* + sparse table index: ready, all-gather */
  CDDP_TRACK_BUCKET = 1000,   /* + bucket index: ready parameters, fill, all-reduce */
  CDDP_TRACK_MAX = 4096
};

extern atomic_int cddp_trace_active_;
static inline int cddp_trace_active(void) {
  return atomic_load_explicit(&cddp_trace_active_, memory_order_relaxed);
}

double cddp_trace_now(void); /* CLOCK_MONOTONIC seconds */

/* Allocates the ring (capacity events, rounded up to a power of two) and, on
 * a device backend, device_spans event pairs. Names the fixed tracks. */
void cddp_trace_init(const cddp_backend *be, size_t capacity, int device_spans);
void cddp_trace_set_active(int on);
/* Names a track (bucket, sparse table); no-op before init. */
void cddp_trace_name_track(int track, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct {
  double t;  /* 0: tracing was inactive at begin */
  int dev;   /* device event pair, or -1 */
} cddp_trace_mark;

/* A span on `track` from begin to end; the name is `name`, followed by idx
 * when idx >= 0 (pass "blocks." for "blocks.3"); bytes > 0 is written as args.bytes. On a device backend the
 * same span is timed on the compute stream (CDDP_TRACK_GPU_COMPUTE). */
cddp_trace_mark cddp_trace_begin(void);
void cddp_trace_end(cddp_trace_mark m, int track, const char *cat, const char *name, int idx,
                    long long bytes);
/* Host-only spans: t0 = cddp_trace_t0() (0 while inactive), then
 * cddp_trace_since(..., t0, ...) records [t0, now] if t0 != 0. */
static inline double cddp_trace_t0(void) { return cddp_trace_active() ? cddp_trace_now() : 0; }
void cddp_trace_since(int track, const char *cat, const char *name, int idx, double t0,
                      long long bytes);
/* A span or instant with explicit times (seconds of cddp_trace_now). */
void cddp_trace_span(int track, const char *cat, const char *name, int idx, double t0, double t1,
                     long long bytes);
void cddp_trace_instant(int track, const char *cat, const char *name, int idx, double t,
                        long long bytes);

/* Device-timed span on stream s (NCCL's communication stream, copies). */
int cddp_trace_dev_begin(cddp_stream *s);
void cddp_trace_dev_end(int slot, cddp_stream *s, int track, const char *cat, const char *name,
                        int idx, long long bytes);
/* Waits for the recorded device events and converts them (device backends). */
void cddp_trace_flush_device(void);

/* This process's events as JSON objects separated by ",\n" (no brackets;
 * for pid > 0 the text starts with ",\n" so that ranks concatenate),
 * with pid and timestamps in microseconds since origin_s of the reference
 * clock, where local = reference + offset_s. Includes process/track names.
 * Caller frees. */
char *cddp_trace_render(int pid, const char *process_name, double origin_s, double offset_s,
                        size_t *len);
size_t cddp_trace_dropped(void);
void cddp_trace_shutdown(void);

#endif

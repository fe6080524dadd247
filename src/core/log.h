/* Logging: info lines only on rank 0 (or before the process group exists),
 * warnings on every rank, prefixed with the rank. */
#ifndef CDDP_CORE_LOG_H
#define CDDP_CORE_LOG_H

void cddp_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cddp_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Silence rank-0 info lines (tests, --quiet). */
void cddp_log_set_quiet(int quiet);

#endif

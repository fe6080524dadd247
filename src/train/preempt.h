/* Pre-emption (DESIGN §7): SIGTERM, SIGINT and SIGUSR1 (Slurm's warning
 * before the time limit) ask the run to stop. The handler only records the
 * signal; the training loop agrees across ranks at a step boundary, writes a
 * checkpoint and exits with CDDP_EXIT_STOPPED. A second signal, arriving at
 * least CDDP_PREEMPT_REPEAT_S after the first (launchers such as mpirun forward
 * a terminal's Ctrl-C as a SIGTERM within that time: one request), ends the
 * process at once with status 128 + signal. */
#ifndef CDDP_TRAIN_PREEMPT_H
#define CDDP_TRAIN_PREEMPT_H

#define CDDP_PREEMPT_REPEAT_S 1.0

/* Installs the handlers; rank names the process in the handler's message. */
void cddp_preempt_install(int rank);
/* Restores the previous dispositions. */
void cddp_preempt_uninstall(void);
/* The first signal received (0: none). */
int cddp_preempt_signal(void);
/* "SIGTERM", "SIGINT", "SIGUSR1" or "a signal". */
const char *cddp_preempt_signal_name(int sig);

#endif

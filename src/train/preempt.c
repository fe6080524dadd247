#include "train/preempt.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

static const int k_signals[] = {SIGTERM, SIGINT, SIGUSR1};
enum { N_SIGNALS = sizeof k_signals / sizeof *k_signals };

static volatile sig_atomic_t g_signal;
static struct timespec g_first;
static struct sigaction g_old[N_SIGNALS];
/* Built at install time: the handler may only call async-signal-safe functions. */
static char g_msg_first[N_SIGNALS][200], g_msg_again[N_SIGNALS][160];

const char *cddp_preempt_signal_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGUSR1 ? "SIGUSR1"
                                                                                : "a signal";
}

static void say(const char *s) {
  ssize_t r = write(STDERR_FILENO, s, strlen(s));
  (void)r;
}

static void on_signal(int sig) {
  int i = 0;
  while (i < N_SIGNALS - 1 && k_signals[i] != sig) i++;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (!g_signal) {
    g_first = now;
    g_signal = sig;
    say(g_msg_first[i]);
    return;
  }
  double since = (double)(now.tv_sec - g_first.tv_sec) + 1e-9 * (double)(now.tv_nsec - g_first.tv_nsec);
  if (since < CDDP_PREEMPT_REPEAT_S) return;
  say(g_msg_again[i]);
  _exit(128 + sig);
}

void cddp_preempt_install(int rank) {
  g_signal = 0;
  for (int i = 0; i < N_SIGNALS; i++) {
    const char *name = cddp_preempt_signal_name(k_signals[i]);
    snprintf(g_msg_first[i], sizeof g_msg_first[i],
             "cddp: rank %d: %s: stopping at the next step boundary after a checkpoint (a second "
             "signal stops at once)\n", rank, name);
    snprintf(g_msg_again[i], sizeof g_msg_again[i],
             "cddp: rank %d: %s again: stopping now, without a checkpoint\n", rank, name);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CDDP_CHECK_SYS(sigaction(k_signals[i], &sa, &g_old[i]));
  }
}

void cddp_preempt_uninstall(void) {
  for (int i = 0; i < N_SIGNALS; i++) CDDP_CHECK_SYS(sigaction(k_signals[i], &g_old[i], NULL));
}

int cddp_preempt_signal(void) { return g_signal; }

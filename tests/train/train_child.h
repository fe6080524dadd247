/* Runs a function in a forked child, capturing its stderr and exit code:
 * how the tests check paths that end in cddp_die (exit codes, messages). */
#ifndef CDDP_TESTS_TRAIN_CHILD_H
#define CDDP_TESTS_TRAIN_CHILD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Returns the exit status (or 128 + signal); err gets stderr (truncated). */
static inline int run_child(void (*fn)(void *), void *arg, char *err, size_t cap) {
  int fd[2];
  if (pipe(fd) != 0) abort();
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], 2);
    fn(arg);
    fflush(stderr);
    _exit(0);
  }
  close(fd[1]);
  size_t len = 0;
  ssize_t k;
  while (len + 1 < cap && (k = read(fd[0], err + len, cap - 1 - len)) > 0) len += (size_t)k;
  err[len] = 0;
  char sink[256];
  while (read(fd[0], sink, sizeof sink) > 0) {
  }
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif

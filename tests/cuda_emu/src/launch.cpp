/* cuda-emu kernel launches: the launch checks (grid and block limits,
 * shared memory, the stream's device, pointer arguments), the queued kernel
 * walking its grid block by block (block.cpp runs each block), and the
 * report of a fault inside a kernel. */
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "block.h"
#include "internal.h"

namespace cuemu {

namespace {
#ifndef __SANITIZE_ADDRESS__ /* ASan reports faults itself, with the kernel's frames */
/* A fault inside a kernel (a wild pointer, a fiber stack overflow) names the
 * kernel, block and thread before the process dies. */
struct sigaction g_old_segv, g_old_bus;
thread_local bool t_device_thread = false;
void on_fault(int sig, siginfo_t *si, void *) {
  const kernel_task *k = t_device_thread ? kernel_running() : nullptr;
  if (k) {
    const launch_cfg &c = k->cfg;
    bool overflow = kernel_stack_overflow(si->si_addr);
    char buf[600];
    int n = snprintf(buf, sizeof buf,
                     "cuda-emu: kernel '%s' (%s:%d) block (%u,%u,%u) thread (%u,%u,%u): %s at %p "
                     "[CUEMU_SEED=%llu]\n", c.name, c.file, c.line, g_block_idx.x, g_block_idx.y,
                     g_block_idx.z, g_thread_idx.x, g_thread_idx.y, g_thread_idx.z,
                     overflow ? "overflowed its fiber stack" : "illegal address", si->si_addr,
                     (unsigned long long)seed());
    if (n > 0 && write(2, buf, (size_t)n) < 0) { /* nothing more to do */ }
  }
  sigaction(sig, sig == SIGSEGV ? &g_old_segv : &g_old_bus, nullptr); /* then fault again */
}
void install_fault_report() {
  static bool done = false;
  if (done) return;
  done = true;
  t_device_thread = true;
  stack_t alt; /* the handler must run off the fiber stack that overflowed */
  alt.ss_size = 64 << 10;
  alt.ss_sp = new char[alt.ss_size];
  alt.ss_flags = 0;
  sigaltstack(&alt, nullptr);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_old_segv);
  sigaction(SIGBUS, &sa, &g_old_bus);
}
#else
void install_fault_report() {}
#endif

} // namespace

int run_kernel(const kernel_task &k) {
  install_fault_report(); /* on the device thread: its alternate signal stack */
  const launch_cfg &c = k.cfg;
  for (uint64_t b : kernel_begin(k)) {
    std::string err = kernel_run_block(b);
    if (!err.empty()) {
      report("kernel '%s' (%s:%d) failed in block (%u,%u,%u) of grid (%u,%u,%u), block "
             "(%u,%u,%u): %s", c.name, c.file, c.line, g_block_idx.x, g_block_idx.y,
             g_block_idx.z, c.grid.x, c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z,
             err.c_str());
      kernel_end(true);
      return -1;
    }
  }
  kernel_end(false);
  return 1;
}

/* ---- the launcher (host side) ------------------------------------------------ */
cudaError_t launch(const launch_cfg &c, std::function<void()> &&body, int host_arg) {
  const char *bad = nullptr;
  char why[200];
  uint64_t threads = (uint64_t)c.block.x * c.block.y * c.block.z;
  if (!c.grid.x || !c.grid.y || !c.grid.z || !c.block.x || !c.block.y || !c.block.z)
    bad = "a grid or block dimension is 0";
  else if (threads > 1024)
    snprintf(why, sizeof why, "block of %llu threads > 1024", (unsigned long long)threads), bad = why;
  else if (c.block.x > 1024 || c.block.y > 1024 || c.block.z > 64)
    bad = "block dimensions exceed (1024, 1024, 64)";
  else if (c.grid.x > 0x7fffffffu || c.grid.y > 65535 || c.grid.z > 65535)
    snprintf(why, sizeof why, "grid (%u,%u,%u) exceeds (2^31-1, 65535, 65535)", c.grid.x, c.grid.y,
             c.grid.z), bad = why;
  else if (c.smem > CUEMU_MAX_STATIC_SHARED)
    snprintf(why, sizeof why, "%zu bytes of dynamic shared memory > 48 KiB", c.smem), bad = why;
  if (bad) {
    report("launch of kernel '%s' (%s:%d): %s", c.name, c.file, c.line, bad);
    return set_last_error(cudaErrorInvalidConfiguration);
  }
  if (!stream_valid(c.stream)) return set_last_error(cudaErrorInvalidResourceHandle);
  if (c.stream && stream_device(c.stream) != current_device()) {
    report("launch of kernel '%s' (%s:%d) on a stream of device %d while device %d is current",
           c.name, c.file, c.line, stream_device(c.stream), current_device());
    return set_last_error(cudaErrorInvalidResourceHandle);
  }
  if (host_arg >= 0) {
    report("launch of kernel '%s' (%s:%d): pointer argument %d is neither device nor pinned "
           "host memory (a GPU would fault)", c.name, c.file, c.line, host_arg + 1);
    return set_last_error(cudaErrorInvalidValue);
  }
  auto task = std::make_shared<kernel_task>(kernel_task{c, std::move(body)});
  return set_last_error(enqueue(c.stream, c.name, [task]() { return run_kernel(*task); }));
}

} // namespace cuemu

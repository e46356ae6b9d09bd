// Making a running vCPU return from KVM_RUN promptly, from any thread or a signal handler.
//
// The protocol (race-free whatever the vCPU thread is doing):
//  1. kick() sets kvm_run.immediate_exit = 1 (an atomic store). A vCPU thread that is about
//     to enter KVM_RUN, or re-enters it, returns at once with EINTR.
//  2. kick() then sends the kick signal to the thread currently inside Vcpu::run(), if any.
//     The signal interrupts a guest that is already running: KVM_RUN returns EINTR.
//  3. run() reports either case as Exit::interrupted() and clears immediate_exit, so one kick
//     stops exactly one run (a kick that arrives between two runs stops the next one).
// The kick signal (SIGRTMIN by default; set_kick_signal() changes it) gets a do-nothing
// handler without SA_RESTART when the first Vcpu is created; the vCPU thread must not block it.
// A Kicker keeps the vCPU's kvm_run mapping alive, so kicking a Vcpu that has been destroyed
// is harmless.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <memory>

namespace kvm {

namespace detail {

// The mapped kvm_run region of one vCPU plus the thread running it. Shared between the Vcpu
// and its Kickers.
struct RunMapping {
  RunMapping(void* addr, std::size_t size) noexcept : addr(addr), size(size) {}
  ~RunMapping();
  RunMapping(const RunMapping&) = delete;
  RunMapping& operator=(const RunMapping&) = delete;

  void* const addr;
  const std::size_t size;
  std::atomic<pid_t> running_tid{0};  // the thread inside KVM_RUN, 0 when none
};

}  // namespace detail

// Chooses the kick signal (a real-time signal is best). Call before creating vCPUs.
void set_kick_signal(int signo);
int kick_signal() noexcept;

class Kicker {
 public:
  explicit Kicker(std::shared_ptr<detail::RunMapping> mapping) noexcept : m_(std::move(mapping)) {}
  // Async-signal-safe: no allocation, no locks.
  void kick() const noexcept;

 private:
  std::shared_ptr<detail::RunMapping> m_;
};

namespace detail {
// Installs the no-op handler for the kick signal once per process.
void install_kick_handler();
}  // namespace detail

}  // namespace kvm

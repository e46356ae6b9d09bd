// Making a running vCPU return from KVM_RUN promptly, from any thread or a signal handler.
//
// The protocol (race-free whatever the vCPU thread is doing):
//  1. kick() sets kvm_run.immediate_exit = 1 (an atomic store). A vCPU thread that is about
//     to enter KVM_RUN, or re-enters it, returns at once with EINTR.
//  2. kick() then sends the kick signal to the thread currently inside Vcpu::run(), if any,
//     and if no kick has signalled that run yet: at most one kick signal is ever pending per
//     vCPU, so a storm of kicks cannot queue thousands of signals for the vCPU thread. The
//     signal interrupts a guest that is already running: KVM_RUN returns EINTR.
//  3. run() reports either case as Exit::interrupted() and clears immediate_exit, so one kick
//     stops exactly one run (a kick that arrives between two runs stops the next one).
// The kick signal (SIGRTMIN by default; set_kick_signal() changes it) is blocked in every
// thread that calls Vcpu::run() of a vCPU that has a Kicker (or has used run_for()), except
// inside KVM_RUN (KVM_SET_SIGNAL_MASK unblocks it for the guest only), and run() consumes a
// signal sent to it before returning. So a kick that lands after run() returned never
// interrupts the thread's other system calls (read(), poll(), nanosleep(), ...). Do not
// unblock the kick signal in a vCPU thread.
// A vCPU that has never had a Kicker gives KVM no signal mask: the mask KVM swaps in and out
// at every KVM_RUN costs 1.5-2% of an exit round trip on the host we measured (bench/), and
// nothing can kick such a vCPU. Its run() makes sure the kick signal is unblocked in the
// thread instead (once per thread, and again after a kickable vCPU ran there), so a Kicker
// made while the vCPU is inside KVM_RUN still stops that run. The first Kicker marks the vCPU
// kickable; its next run() blocks the signal and gives KVM the mask.
// A Kicker keeps the vCPU's kvm_run mapping alive, so kicking a Vcpu that has been destroyed
// is harmless.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace kvm {

namespace detail {

// The mapped kvm_run region of one vCPU plus the thread running it, shared by the Vcpu and its
// Kickers and unmapped when the last of them lets go. Counted by hand with the compiler's
// atomic builtins: <memory> and <atomic> would double the cost of compiling kvm/kvm.h.
class RunMapping {
 public:
  // Takes ownership of an mmap'd region; throws nothing.
  static RunMapping* adopt(void* addr, std::size_t size);
  void retain() noexcept { __atomic_fetch_add(&refs_, 1, __ATOMIC_RELAXED); }
  void release() noexcept;

  void* addr() const noexcept { return addr_; }
  std::size_t size() const noexcept { return size_; }
  // The vCPU thread (a kernel tid) enters and leaves Vcpu::run(). leave() says whether a
  // kick signal was sent to the thread during the run, which run() must then consume.
  void enter(pid_t tid) noexcept {
    __atomic_store_n(&run_state_, static_cast<std::uint32_t>(tid), __ATOMIC_SEQ_CST);
  }
  bool leave() noexcept { return __atomic_exchange_n(&run_state_, 0, __ATOMIC_SEQ_CST) & kSent; }
  // For kick(): the thread to signal, or 0 when no thread is inside run() or a kick has
  // already signalled this run. Claims the run's one signal.
  pid_t claim_signal() noexcept;
  // Whether the vCPU may be kicked (a Kicker was made, or run_for() used): only then does
  // run() block the kick signal in its thread and give KVM a signal mask.
  void mark_kickable() noexcept { __atomic_store_n(&kickable_, true, __ATOMIC_RELEASE); }
  bool kickable() const noexcept { return __atomic_load_n(&kickable_, __ATOMIC_ACQUIRE); }

 private:
  RunMapping(void* addr, std::size_t size) noexcept : addr_(addr), size_(size) {}
  ~RunMapping();

  void* const addr_;
  const std::size_t size_;
  // The running thread's tid in the low 32 bits (0: none), kSent once a kick signalled it.
  static constexpr std::uint64_t kSent = std::uint64_t{1} << 32;
  int refs_ = 1;
  std::uint64_t run_state_ = 0;
  bool kickable_ = false;
};

// A counted reference to a RunMapping.
class RunMappingRef {
 public:
  RunMappingRef() noexcept = default;
  explicit RunMappingRef(RunMapping* m) noexcept : m_(m) {}  // adopts one reference
  RunMappingRef(const RunMappingRef& o) noexcept : m_(o.m_) {
    if (m_) m_->retain();
  }
  RunMappingRef(RunMappingRef&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  RunMappingRef& operator=(RunMappingRef o) noexcept {
    std::swap(m_, o.m_);
    return *this;
  }
  ~RunMappingRef() {
    if (m_) m_->release();
  }
  RunMapping* operator->() const noexcept { return m_; }
  RunMapping* get() const noexcept { return m_; }

 private:
  RunMapping* m_ = nullptr;
};

}  // namespace detail

// Chooses the kick signal (a real-time signal is best). Call before creating vCPUs.
void set_kick_signal(int signo);
int kick_signal() noexcept;

class Kicker {
 public:
  explicit Kicker(detail::RunMappingRef mapping) noexcept : m_(std::move(mapping)) {
    m_->mark_kickable();
  }
  // Async-signal-safe: no allocation, no locks.
  void kick() const noexcept;

 private:
  detail::RunMappingRef m_;
};

namespace detail {
// Installs the no-op handler for the kick signal once per process.
void install_kick_handler();

// Blocks or unblocks the kick signal in the calling thread (Vcpu::run(): blocked while it
// runs kickable vCPUs, unblocked for the others).
void set_kick_signal_blocked(bool blocked);

// Consumes kick signals pending for the calling thread (where it is blocked): first waits (up
// to a second) for one that a kick has committed to sending when `wait_for_one`, then takes
// any others without waiting. Keeps errno.
void consume_kick_signals(bool wait_for_one) noexcept;

// A POSIX timer (CLOCK_MONOTONIC) that sends the kick signal to one thread: first after
// `first_ns`, then every `interval_ns` until disarmed. Vcpu::run_for() uses it: the signal
// makes KVM_RUN return EINTR, and the repeats cover a first signal that lands just before the
// guest is entered (then it only interrupts the way in). Created on first use and re-created
// when another thread arms it. Move-only; deletes the timer on destruction.
class ThreadTimer {
 public:
  ThreadTimer() noexcept = default;
  ThreadTimer(ThreadTimer&& o) noexcept
      : timer_(std::exchange(o.timer_, nullptr)),
        created_(std::exchange(o.created_, false)),
        tid_(std::exchange(o.tid_, 0)) {}
  ThreadTimer& operator=(ThreadTimer o) noexcept {
    std::swap(timer_, o.timer_);
    std::swap(created_, o.created_);
    std::swap(tid_, o.tid_);
    return *this;
  }
  ~ThreadTimer();

  // Throws kvm::Error if the timer cannot be created or set.
  void arm(pid_t tid, std::uint64_t first_ns, std::uint64_t interval_ns);
  void disarm() noexcept;

 private:
  void* timer_ = nullptr;  // a timer_t, which glibc defines as a pointer
  bool created_ = false;   // not timer_ != nullptr: the kernel's first timer id, 0, is one too
  pid_t tid_ = 0;
};
}  // namespace detail

}  // namespace kvm

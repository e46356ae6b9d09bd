#include "kvm/kick.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include "kvm/abi/kvm_abi.h"
#include "kvm/error.h"

namespace kvm {
namespace {

std::atomic<int> g_kick_signal{0};

void on_kick(int) {}  // its only job is to make KVM_RUN return EINTR

sigset_t kick_set() noexcept {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, kick_signal());
  return s;
}

}  // namespace

detail::RunMapping* detail::RunMapping::adopt(void* addr, std::size_t size) {
  return new RunMapping(addr, size);
}

void detail::RunMapping::release() noexcept {
  if (__atomic_sub_fetch(&refs_, 1, __ATOMIC_ACQ_REL) == 0) delete this;
}

detail::RunMapping::~RunMapping() { ::munmap(addr_, size_); }

pid_t detail::RunMapping::claim_signal() noexcept {
  std::uint64_t state = __atomic_load_n(&run_state_, __ATOMIC_SEQ_CST);
  for (;;) {
    if ((state & 0xffffffffu) == 0 || (state & kSent)) return 0;
    // Only the kick whose exchange sets kSent signals; leave() takes kSent back with the tid,
    // so the thread knows a signal is on its way and waits for it before run() returns.
    if (__atomic_compare_exchange_n(&run_state_, &state, state | kSent, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
      return static_cast<pid_t>(state & 0xffffffffu);
    }
  }
}

void set_kick_signal(int signo) {
  if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP) {
    throw Error("kvm::set_kick_signal", EINVAL,
                "signal " + std::to_string(signo) + " cannot be caught");
  }
  g_kick_signal.store(signo);
}

int kick_signal() noexcept {
  int s = g_kick_signal.load();
  return s ? s : SIGRTMIN;
}

void detail::install_kick_handler() {
  static std::mutex mu;
  static int installed = 0;
  std::lock_guard<std::mutex> lock(mu);
  int signo = kick_signal();
  if (installed == signo) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_kick;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must come back with EINTR
  if (::sigaction(signo, &sa, nullptr) != 0)
    throw_error("sigaction", errno, "installing the kick handler");
  installed = signo;
}

void detail::set_kick_signal_blocked(bool blocked) {
  sigset_t kick = kick_set();
  if (int err = ::pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &kick, nullptr); err != 0) {
    throw_error("pthread_sigmask", err,
                blocked ? "blocking the kick signal in the vCPU thread"
                        : "unblocking the kick signal in the vCPU thread");
  }
}

void detail::consume_kick_signals(bool wait_for_one) noexcept {
  int saved = errno;
  sigset_t kick = kick_set();
  // A kick that claimed the run's signal may still be on its way to tgkill(): wait for it
  // (bounded, in case the kicking thread is descheduled for long), then drain without waiting
  // (run_for()'s timer may have queued one more).
  struct timespec wait = {wait_for_one ? 1 : 0, 0};
  for (;;) {
    int r = ::sigtimedwait(&kick, nullptr, &wait);
    if (r < 0 && errno == EINTR) continue;  // another signal's handler ran
    if (r < 0) break;                       // EAGAIN: none (left)
    wait = {0, 0};
  }
  errno = saved;
}

namespace detail {

static_assert(sizeof(timer_t) == sizeof(void*), "ThreadTimer keeps a timer_t in a void*");

ThreadTimer::~ThreadTimer() {
  if (created_) ::timer_delete(static_cast<timer_t>(timer_));
}

void ThreadTimer::arm(pid_t tid, std::uint64_t first_ns, std::uint64_t interval_ns) {
  if (created_ && tid_ != tid) {
    ::timer_delete(static_cast<timer_t>(timer_));
    created_ = false;
  }
  if (!created_) {
    struct sigevent sev;
    std::memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = kick_signal();
    sev._sigev_un._tid = tid;
    timer_t t;
    if (::timer_create(CLOCK_MONOTONIC, &sev, &t) != 0)
      throw_error("timer_create", errno, "the run_for() timer of thread " + std::to_string(tid));
    timer_ = t;
    created_ = true;
    tid_ = tid;
  }
  auto spec = [](std::uint64_t ns) {
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(ns / 1000000000u);
    ts.tv_nsec = static_cast<long>(ns % 1000000000u);
    return ts;
  };
  struct itimerspec its;
  its.it_value = spec(first_ns ? first_ns : 1);  // 0 would disarm
  its.it_interval = spec(interval_ns);
  if (::timer_settime(static_cast<timer_t>(timer_), 0, &its, nullptr) != 0)
    throw_error("timer_settime", errno, "arming the run_for() timer");
}

void ThreadTimer::disarm() noexcept {
  if (!created_) return;
  struct itimerspec its;
  std::memset(&its, 0, sizeof its);
  ::timer_settime(static_cast<timer_t>(timer_), 0, &its, nullptr);
}

}  // namespace detail

void Kicker::kick() const noexcept {
  auto* run = static_cast<abi::kvm_run*>(m_->addr());
  std::atomic_ref<std::uint8_t>(run->immediate_exit).store(1, std::memory_order_seq_cst);
  pid_t tid = m_->claim_signal();
  if (tid != 0) {
    int saved = errno;
    ::syscall(SYS_tgkill, ::getpid(), tid, kick_signal());
    errno = saved;
  }
}

}  // namespace kvm

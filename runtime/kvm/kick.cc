#include "kvm/kick.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "kvm/abi/kvm_abi.h"
#include "kvm/error.h"

namespace kvm {
namespace {

std::atomic<int> g_kick_signal{0};

void on_kick(int) {}  // its only job is to make KVM_RUN return EINTR

}  // namespace

detail::RunMapping* detail::RunMapping::adopt(void* addr, std::size_t size) {
  return new RunMapping(addr, size);
}

void detail::RunMapping::release() noexcept {
  if (__atomic_sub_fetch(&refs_, 1, __ATOMIC_ACQ_REL) == 0) delete this;
}

detail::RunMapping::~RunMapping() { ::munmap(addr_, size_); }

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

void Kicker::kick() const noexcept {
  auto* run = static_cast<abi::kvm_run*>(m_->addr());
  std::atomic_ref<std::uint8_t>(run->immediate_exit).store(1, std::memory_order_seq_cst);
  pid_t tid = m_->running_tid();
  if (tid != 0) {
    int saved = errno;
    ::syscall(SYS_tgkill, ::getpid(), tid, kick_signal());
    errno = saved;
  }
}

}  // namespace kvm

#include "kvm/vcpu.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "kvm/device.h"
#include "kvm/device_attr.h"
#include "kvm/format.h"

namespace kvm {
namespace {

#if defined(KVM_ABI_HAS_KVM_EXIT_MEMORY_FAULT)
constexpr std::uint32_t kMemoryFault = abi::to_underlying(ExitReason::MemoryFault);
#else
constexpr std::uint32_t kMemoryFault = 39;  // KVM_EXIT_MEMORY_FAULT, newer than these headers
#endif

pid_t current_tid() noexcept {
  thread_local pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  return tid;
}

// What prepare_thread() knows about the calling thread: a serial number that, unlike a tid,
// is never reused, and the thread's signal mask as the runtime found it.
struct ThreadSignals {
  std::uint64_t serial = 0;  // 0: not seen yet
  std::uint64_t mask_before = 0;
  // Whether the kick signal is blocked in this thread: asked once per thread, because a
  // thread inherits its creator's mask, then kept as prepare_thread() changes it.
  bool kick_blocked = false;
};
thread_local ThreadSignals t_signals;
std::atomic<std::uint64_t> g_thread_serials{0};

detail::RunMappingRef map_run(int fd, unsigned id, std::size_t size) {
  if (size < sizeof(abi::kvm_run)) {
    throw Error("mmap", EINVAL,
                "vcpu " + std::to_string(id) + ": KVM_GET_VCPU_MMAP_SIZE " + std::to_string(size) +
                    " is smaller than struct kvm_run");
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_error("mmap", errno, "kvm_run of vcpu " + std::to_string(id));
  try {
    return detail::RunMappingRef(detail::RunMapping::adopt(p, size));  // unmaps on the last release
  } catch (...) {
    ::munmap(p, size);
    throw;
  }
}

}  // namespace

Vcpu::Vcpu(Fd fd, unsigned id, std::size_t mmap_size, std::uint64_t sync_mask)
    : fd_(std::move(fd)), id_(id), map_(map_run(fd_.get(), id, mmap_size)), sync_mask_(sync_mask) {
  detail::install_kick_handler();
  run_struct().kvm_valid_regs = 0;  // nothing is requested until it is read
}

std::uint64_t Vcpu::next_sync_request() noexcept {
  if (sync_fixed_) return sync_requested_;
  // Groups read in the window that ends stay requested for the next one; the others are
  // dropped, so a VMM that stopped reading them stops paying for the copy.
  if (++window_runs_ == kSyncWindowRuns) {
    window_runs_ = 0;
    sync_requested_ = sync_read_;
    sync_read_ = 0;
  }
  return sync_requested_;
}

bool Vcpu::prepare_thread() {
  if (t_signals.serial == 0) {
    // Once per thread: its mask as the runtime finds it (inherited from its creator), which
    // is the guest's too, without the kick signal.
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    std::memcpy(&t_signals.mask_before, &now, sizeof t_signals.mask_before);
    t_signals.kick_blocked = sigismember(&now, kick_signal()) == 1;
    t_signals.serial = ++g_thread_serials;
  }
  // A kickable vCPU runs with the kick signal blocked in the thread and unblocked for the guest
  // by KVM's mask. Any other runs with the thread's own mask, where the signal must be
  // unblocked for a Kicker made during the run (see kick.h); no kick signal is pending when
  // it changes, as every run that could be sent one consumed it.
  const bool kickable = map_->kickable() || has_user_mask_;
  if (kickable != t_signals.kick_blocked) {
    detail::set_kick_signal_blocked(kickable);
    t_signals.kick_blocked = kickable;
  }
  if (!kickable) return false;
  if (prepared_thread_ != t_signals.serial) {
    set_guest_signal_mask(has_user_mask_ ? user_mask_ : t_signals.mask_before);
    prepared_thread_ = t_signals.serial;
  }
  return true;
}

Exit Vcpu::run() {
  const bool masked = prepare_thread();
  abi::kvm_run& r = run_struct();
  r.kvm_valid_regs = next_sync_request();
  // A memory-fault exit is recognised by its exit_reason after a failed run; one left from an
  // earlier run must not be mistaken for it.
  if (r.exit_reason == kMemoryFault) r.exit_reason = abi::to_underlying(ExitReason::Unknown);
  map_->enter(current_tid());
  int rc = ::ioctl(fd_.get(), static_cast<unsigned long>(abi::ioctl::Run::request), 0);
  int err = rc < 0 ? errno : 0;
  // A kick that signalled this run, or any signal that interrupted it, left a kick signal
  // pending (blocked outside KVM_RUN): take it now, so that it cannot stop the next run.
  // Unmasked (a vCPU not yet kickable), the signal went to its no-op handler instead.
  bool signalled = map_->leave();
  if (masked && (signalled || err == EINTR)) detail::consume_kick_signals(signalled);
  has_run_ = true;
  if (rc < 0 && (err == EFAULT || err == EHWPOISON) && r.exit_reason == kMemoryFault) {
    sync_valid_ = 0;  // read registers with the ioctls after a failed run
    return Exit(r, map_->size(), RunStatus::Exited, err);
  }
  if (rc < 0) {
    if (err == EINTR || err == EAGAIN) {
      // A kick leaves immediate_exit set; this run consumed it.
      std::atomic_ref<std::uint8_t>(r.immediate_exit).store(0, std::memory_order_seq_cst);
      sync_valid_ = sync_requested_;
      return Exit(r, map_->size(), RunStatus::Interrupted, err);
    }
    sync_valid_ = 0;
    throw_error("KVM_RUN", err, "vcpu " + std::to_string(id_));
  }
  sync_valid_ = sync_requested_;
  return Exit(r, map_->size(), RunStatus::Exited);
}

Exit Vcpu::run_for(std::chrono::nanoseconds timeout) {
  using namespace std::chrono;
  if (timeout < nanoseconds::zero()) {
    throw Error("kvm::Vcpu::run_for", EINVAL,
                "vcpu " + std::to_string(id_) + ": negative timeout " +
                    std::to_string(timeout.count()) + " ns");
  }
  const auto deadline = steady_clock::now() + timeout;  // CLOCK_MONOTONIC, as the timer
  const auto ns = static_cast<std::uint64_t>(timeout.count());
  const std::uint64_t interval = std::clamp<std::uint64_t>(ns, 100'000, 1'000'000);
  map_->mark_kickable();  // the timer's signal is the kick signal: blocked outside KVM_RUN
  prepare_thread();
  timer_.arm(current_tid(), ns, interval);
  struct Disarm {
    detail::ThreadTimer& t;
    bool armed = true;
    void now() noexcept {
      if (armed) t.disarm();
      armed = false;
    }
    ~Disarm() { now(); }
  } disarm{timer_};
  Exit e = run();
  disarm.now();
  const bool late = steady_clock::now() >= deadline;
  // The timer fires at the deadline; if it did after the run ended, its signal is pending.
  if (late) detail::consume_kick_signals(false);
  if (e.interrupted() && late)
    return Exit(run_struct(), map_->size(), RunStatus::TimedOut, e.run_errno());
  return e;
}

void Vcpu::enable_cap(abi::Cap cap, std::uint64_t a0, std::uint64_t a1, std::uint64_t a2,
                      std::uint64_t a3, std::uint32_t flags) const {
  detail::enable_cap(*this, cap, a0, a1, a2, a3, flags);
}

bool Vcpu::has_attr(std::uint32_t group, std::uint64_t attr) const {
  return detail::has_attr(*this, group, attr);
}
void Vcpu::get_attr(std::uint32_t group, std::uint64_t attr, void* value) const {
  detail::get_attr(*this, group, attr, value);
}
void Vcpu::set_attr(std::uint32_t group, std::uint64_t attr, const void* value) const {
  detail::set_attr(*this, group, attr, value);
}

abi::MpState Vcpu::mp_state() const {
  abi::kvm_mp_state s{};
  ioctl<abi::ioctl::GetMpState>(s);
  return static_cast<abi::MpState>(s.mp_state);
}

void Vcpu::set_mp_state(abi::MpState state) const {
  abi::kvm_mp_state s{};
  s.mp_state = abi::to_underlying(state);
  std::string name(abi::to_string(state));
  ioctl<abi::ioctl::SetMpState>(s, name.empty() ? "state " + std::to_string(s.mp_state) : name);
}

Fd Vcpu::stats_fd() const { return Fd(ioctl<abi::ioctl::GetStatsFd>()); }

void Vcpu::set_signal_mask(const sigset_t* mask) {
  if (!mask) {
    has_user_mask_ = false;
    prepared_thread_ = 0;  // a kickable vCPU's next run() gives KVM its thread's mask
    if (!map_->kickable()) {
      // Nothing to unblock for kicks: KVM goes back to running the guest with the thread's
      // own mask (KVM_SET_SIGNAL_MASK without a mask).
      int r = detail::raw_ioctl(fd_.get(), abi::ioctl::SetSignalMask::request, 0);
      if (r < 0) throw_error(abi::ioctl::SetSignalMask::name, -r, "clearing the guest's mask");
    }
    return;
  }
  std::uint64_t m;
  std::memcpy(&m, mask, sizeof m);  // glibc's sigset_t starts with the kernel's 64 bits
  set_guest_signal_mask(m);
  user_mask_ = m;
  has_user_mask_ = true;
}

void Vcpu::set_guest_signal_mask(std::uint64_t mask) const {
  mask &= ~(std::uint64_t{1} << (kick_signal() - 1));  // kicks must reach the guest
  // struct kvm_signal_mask is a length followed by the kernel's 8-byte sigset.
  alignas(abi::kvm_signal_mask) std::uint8_t buf[sizeof(abi::kvm_signal_mask) + 8] = {};
  auto* m = reinterpret_cast<abi::kvm_signal_mask*>(buf);
  m->len = 8;
  std::memcpy(buf + sizeof(abi::kvm_signal_mask), &mask, 8);
  ioctl<abi::ioctl::SetSignalMask>(*m, "the guest's signal mask");
}

#if defined(__x86_64__)
namespace {
constexpr std::uint64_t kSyncRegs = abi::to_underlying(abi::SyncRegs::Regs);
constexpr std::uint64_t kSyncSregs = abi::to_underlying(abi::SyncRegs::Sregs);
constexpr std::uint64_t kSyncEvents = abi::to_underlying(abi::SyncRegs::Events);
using detail::get_struct;
using detail::set_struct;
}  // namespace

template <class GetIo, class T>
T Vcpu::read_synced(std::uint64_t group, T& copy) const {
  if (!has_run_ || !(sync_mask_ & group)) return get_struct<GetIo>(*this);
  sync_read_ |= group;
  if (sync_valid_ & group) return copy;
  // Not copied out at this exit: ask KVM, keep the answer as the current copy (a set_*() of
  // this exit then needs no ioctl), and have KVM copy the group out from the next run on.
  copy = get_struct<GetIo>(*this);
  sync_valid_ |= group;
  if (!sync_fixed_) sync_requested_ |= group;
  return copy;
}

namespace {
// "KVM_SYNC_X86_REGS|KVM_SYNC_X86_EVENTS", and any bit without a name in hex.
std::string sync_group_names(std::uint64_t groups) {
  std::string out;
  for (std::uint64_t bit = 1; bit != 0 && groups != 0; bit <<= 1) {
    if (!(groups & bit)) continue;
    groups &= ~bit;
    std::string_view n = bit <= kSyncEvents ? abi::to_string(static_cast<abi::SyncRegs>(bit)) : "";
    if (!out.empty()) out += '|';
    out += n.empty() ? detail::hex(bit) : std::string(n);
  }
  return out.empty() ? "none" : out;
}
}  // namespace

void Vcpu::set_sync_regs(std::uint64_t groups) {
  if (groups & ~sync_mask_) {
    throw Error("kvm::Vcpu::set_sync_regs", EINVAL,
                "vcpu " + std::to_string(id_) + ": " + sync_group_names(groups & ~sync_mask_) +
                    " not among the groups this vCPU may sync (" + sync_group_names(sync_mask_) +
                    "; VcpuOptions::sync_regs/sync_events and the host's KVM_CAP_SYNC_REGS)");
  }
  sync_fixed_ = true;
  sync_requested_ = groups;
}

void Vcpu::set_sync_regs_on_demand() noexcept {
  if (!sync_fixed_) return;
  sync_fixed_ = false;
  // A new window: the fixed groups stay requested until it passes without reading them.
  window_runs_ = 0;
  sync_read_ = 0;
}

void Vcpu::mark_sync_regs_dirty(std::uint64_t groups) {
  // Called per exit by a VMM that edits the synced copy: the message is built on failure only.
  auto who = [this] { return "vcpu " + std::to_string(id_) + ": "; };
  if (groups & ~sync_mask_) {
    throw Error("kvm::Vcpu::mark_sync_regs_dirty", EINVAL,
                who() + sync_group_names(groups & ~sync_mask_) +
                    " not among the groups this vCPU may sync (" + sync_group_names(sync_mask_) +
                    ")");
  }
  if (groups & ~sync_valid_) {
    throw Error("kvm::Vcpu::mark_sync_regs_dirty", EINVAL,
                who() + sync_group_names(groups & ~sync_valid_) +
                    " not current in kvm_run (not copied out at the last exit, nor read or set "
                    "since): KVM would load a stale copy; read the group first, or give it "
                    "whole with set_regs()/set_sregs()/set_vcpu_events()");
  }
  run_struct().kvm_dirty_regs |= groups;
}

template <class SetIo, class T>
void Vcpu::write_synced(std::uint64_t group, T& copy, const T& value) {
  if (!has_run_ || !(sync_mask_ & group)) {
    set_struct<SetIo>(*this, value);
    sync_valid_ &= ~group;  // a copy taken before is stale now
    return;
  }
  // The whole group is given, so the copy is current whether or not KVM copied it out.
  copy = value;
  sync_valid_ |= group;
  run_struct().kvm_dirty_regs |= group;
}

abi::kvm_regs Vcpu::regs() const {
  return read_synced<abi::ioctl::GetRegs>(kSyncRegs, run_struct().s.regs.regs);
}

void Vcpu::set_regs(const abi::kvm_regs& regs) {
  write_synced<abi::ioctl::SetRegs>(kSyncRegs, run_struct().s.regs.regs, regs);
}

abi::kvm_sregs Vcpu::sregs() const {
  return read_synced<abi::ioctl::GetSregs>(kSyncSregs, run_struct().s.regs.sregs);
}

void Vcpu::set_sregs(const abi::kvm_sregs& sregs) {
  write_synced<abi::ioctl::SetSregs>(kSyncSregs, run_struct().s.regs.sregs, sregs);
}

abi::kvm_fpu Vcpu::fpu() const { return get_struct<abi::ioctl::GetFpu>(*this); }
void Vcpu::set_fpu(const abi::kvm_fpu& fpu) const { set_struct<abi::ioctl::SetFpu>(*this, fpu); }

int Vcpu::get_msrs(Msrs& msrs) const {
  return ioctl<abi::ioctl::GetMsrs>(*msrs.get(), std::to_string(msrs.size()) + " MSRs");
}

int Vcpu::set_msrs(const Msrs& msrs) const {
  Msrs copy = msrs;  // the kernel takes a non-const pointer
  return ioctl<abi::ioctl::SetMsrs>(*copy.get(), std::to_string(msrs.size()) + " MSRs");
}

void Vcpu::set_cpuid2(const Cpuid& cpuid) const {
  Cpuid copy = cpuid;
  ioctl<abi::ioctl::SetCpuid2>(*copy.get(), std::to_string(cpuid.size()) + " entries");
}

Cpuid Vcpu::cpuid2() const {
  Cpuid cpuid;
  cpuid.resize(Cpuid::kernel_max);
  ioctl<abi::ioctl::GetCpuid2>(*cpuid.get());
  return cpuid;
}

abi::kvm_lapic_state Vcpu::lapic() const { return get_struct<abi::ioctl::GetLapic>(*this); }
void Vcpu::set_lapic(const abi::kvm_lapic_state& l) const {
  set_struct<abi::ioctl::SetLapic>(*this, l);
}

abi::kvm_vcpu_events Vcpu::vcpu_events() const {
  return read_synced<abi::ioctl::GetVcpuEvents>(kSyncEvents, run_struct().s.regs.events);
}
void Vcpu::set_vcpu_events(const abi::kvm_vcpu_events& e) {
  write_synced<abi::ioctl::SetVcpuEvents>(kSyncEvents, run_struct().s.regs.events, e);
}

abi::kvm_debugregs Vcpu::debugregs() const { return get_struct<abi::ioctl::GetDebugregs>(*this); }
void Vcpu::set_debugregs(const abi::kvm_debugregs& d) const {
  set_struct<abi::ioctl::SetDebugregs>(*this, d);
}

abi::kvm_xsave Vcpu::xsave() const { return get_struct<abi::ioctl::GetXsave>(*this); }
void Vcpu::set_xsave(const abi::kvm_xsave& x) const { set_struct<abi::ioctl::SetXsave>(*this, x); }

std::vector<std::uint32_t> Vcpu::xsave2(std::size_t size_bytes) const {
  if (size_bytes < sizeof(abi::kvm_xsave)) {
    throw Error("KVM_GET_XSAVE2", EINVAL,
                "size " + std::to_string(size_bytes) + " < sizeof(kvm_xsave) " +
                    std::to_string(sizeof(abi::kvm_xsave)) +
                    "; use KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM");
  }
  std::vector<std::uint32_t> area((size_bytes + 3) / 4);
  ioctl<abi::ioctl::GetXsave2>(*reinterpret_cast<abi::kvm_xsave*>(area.data()));
  return area;
}

void Vcpu::set_xsave2(std::span<const std::uint32_t> area) const {
  if (area.size_bytes() < sizeof(abi::kvm_xsave)) {
    throw Error("KVM_SET_XSAVE", EINVAL,
                "area of " + std::to_string(area.size_bytes()) + " bytes is too small");
  }
  std::vector<std::uint32_t> copy(area.begin(), area.end());
  ioctl<abi::ioctl::SetXsave>(*reinterpret_cast<abi::kvm_xsave*>(copy.data()));
}

abi::kvm_xcrs Vcpu::xcrs() const { return get_struct<abi::ioctl::GetXcrs>(*this); }
void Vcpu::set_xcrs(const abi::kvm_xcrs& x) const {
  if (x.nr_xcrs > std::size(x.xcrs)) {
    throw Error("KVM_SET_XCRS", EINVAL,
                "nr_xcrs " + std::to_string(x.nr_xcrs) + " > " + std::to_string(std::size(x.xcrs)));
  }
  set_struct<abi::ioctl::SetXcrs>(*this, x);
}

void Vcpu::set_guest_debug(const abi::kvm_guest_debug& d) const {
  set_struct<abi::ioctl::SetGuestDebug>(*this, d);
}

abi::kvm_translation Vcpu::translate(std::uint64_t linear_address) const {
  abi::kvm_translation t{};
  t.linear_address = linear_address;
  ioctl<abi::ioctl::Translate>(t);
  return t;
}

void Vcpu::interrupt(std::uint32_t irq) const {
  abi::kvm_interrupt i{};
  i.irq = irq;
  ioctl<abi::ioctl::Interrupt>(i, "irq " + std::to_string(irq));
}

void Vcpu::nmi() const { ioctl<abi::ioctl::Nmi>(); }
void Vcpu::smi() const { ioctl<abi::ioctl::Smi>(); }

void Vcpu::set_tsc_khz(std::uint32_t khz) const {
  ioctl<abi::ioctl::SetTscKhz>(khz, std::to_string(khz) + " kHz");
}
std::uint32_t Vcpu::tsc_khz() const {
  return static_cast<std::uint32_t>(ioctl<abi::ioctl::GetTscKhz>());
}

void Vcpu::kvmclock_ctrl() const { ioctl<abi::ioctl::KvmclockCtrl>(); }
#endif

#if defined(__aarch64__) || defined(__riscv)
void Vcpu::get_one_reg(std::uint64_t id, void* value) const {
  abi::kvm_one_reg r{};
  r.id = id;
  r.addr = reinterpret_cast<std::uint64_t>(value);
  ioctl<abi::ioctl::GetOneReg>(r, "register id " + std::to_string(id));
}

void Vcpu::set_one_reg(std::uint64_t id, const void* value) const {
  abi::kvm_one_reg r{};
  r.id = id;
  r.addr = reinterpret_cast<std::uint64_t>(value);
  ioctl<abi::ioctl::SetOneReg>(r, "register id " + std::to_string(id));
}

std::uint64_t Vcpu::one_reg_u64(std::uint64_t id) const {
  // The id encodes the size: bytes = 1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT).
  std::uint64_t bytes = 1ull << ((id & abi::consts::RegSizeMask) >> abi::consts::RegSizeShift);
  if (bytes > 8) {
    throw Error(
        "KVM_GET_ONE_REG", EINVAL,
        "register id " + std::to_string(id) + " is " + std::to_string(bytes) + " bytes, not a u64");
  }
  std::uint64_t v = 0;
  get_one_reg(id, &v);
  return v;
}

std::vector<std::uint64_t> Vcpu::reg_list() const {
  // Ask with n = 0: the kernel answers E2BIG and the count it needs.
  std::vector<std::uint64_t> buf(1, 0);
  auto* list = reinterpret_cast<abi::kvm_reg_list*>(buf.data());
  int r = try_ioctl<abi::ioctl::GetRegList>(*list);
  if (r == -E2BIG) {
    std::uint64_t n = list->n;
    if (n > (1u << 20)) throw Error("KVM_GET_REG_LIST", EIO, std::to_string(n) + " registers");
    buf.assign(n + 1, 0);
    list = reinterpret_cast<abi::kvm_reg_list*>(buf.data());
    list->n = n;
    r = try_ioctl<abi::ioctl::GetRegList>(*list);
  }
  if (r < 0) throw_error("KVM_GET_REG_LIST", -r);
  return {buf.begin() + 1, buf.begin() + 1 + static_cast<std::ptrdiff_t>(list->n)};
}
#endif

#if defined(__aarch64__)
void Vcpu::arm_vcpu_init(const abi::kvm_vcpu_init& init) const {
  abi::kvm_vcpu_init copy = init;
  ioctl<abi::ioctl::ArmVcpuInit>(copy, "target " + std::to_string(init.target));
}
#endif

}  // namespace kvm

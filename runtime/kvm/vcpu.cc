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
  run_struct().kvm_valid_regs = sync_mask_;
}

Exit Vcpu::run() {
  abi::kvm_run& r = run_struct();
  r.kvm_valid_regs = sync_mask_;
  // A memory-fault exit is recognised by its exit_reason after a failed run; one left from an
  // earlier run must not be mistaken for it.
  if (r.exit_reason == kMemoryFault) r.exit_reason = abi::to_underlying(ExitReason::Unknown);
  map_->set_running_tid(current_tid());
  int rc = ::ioctl(fd_.get(), static_cast<unsigned long>(abi::ioctl::Run::request), 0);
  int err = rc < 0 ? errno : 0;
  map_->set_running_tid(0);
  if (rc < 0 && (err == EFAULT || err == EHWPOISON) && r.exit_reason == kMemoryFault) {
    sync_valid_ = false;  // read registers with the ioctls after a failed run
    return Exit(r, map_->size(), RunStatus::Exited, err);
  }
  if (rc < 0) {
    if (err == EINTR || err == EAGAIN) {
      // A kick leaves immediate_exit set; this run consumed it.
      std::atomic_ref<std::uint8_t>(r.immediate_exit).store(0, std::memory_order_seq_cst);
      sync_valid_ = sync_mask_ != 0;
      return Exit(r, map_->size(), RunStatus::Interrupted, err);
    }
    sync_valid_ = false;
    throw_error("KVM_RUN", err, "vcpu " + std::to_string(id_));
  }
  sync_valid_ = sync_mask_ != 0;
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
  timer_.arm(current_tid(), ns, interval);
  struct Disarm {
    detail::ThreadTimer& t;
    ~Disarm() { t.disarm(); }
  } disarm{timer_};
  Exit e = run();
  if (e.interrupted() && steady_clock::now() >= deadline)
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

void Vcpu::set_signal_mask(const sigset_t* mask) const {
  // struct kvm_signal_mask is a length followed by the kernel's 8-byte sigset.
  alignas(abi::kvm_signal_mask) std::uint8_t buf[sizeof(abi::kvm_signal_mask) + 8] = {};
  auto* m = reinterpret_cast<abi::kvm_signal_mask*>(buf);
  if (mask) {
    m->len = 8;
    std::memcpy(buf + sizeof(abi::kvm_signal_mask), mask, 8);
    ioctl<abi::ioctl::SetSignalMask>(*m);
  } else {
    int r = detail::raw_ioctl(fd_.get(), abi::ioctl::SetSignalMask::request, 0);
    if (r < 0) throw_error(abi::ioctl::SetSignalMask::name, -r, "clearing the mask");
  }
}

#if defined(__x86_64__)
namespace {
constexpr std::uint64_t kSyncRegs = abi::to_underlying(abi::SyncRegs::Regs);
constexpr std::uint64_t kSyncSregs = abi::to_underlying(abi::SyncRegs::Sregs);
constexpr std::uint64_t kSyncEvents = abi::to_underlying(abi::SyncRegs::Events);
using detail::get_struct;
using detail::set_struct;
}  // namespace

abi::kvm_regs Vcpu::regs() const {
  if (synced(kSyncRegs)) return run_struct().s.regs.regs;
  return get_struct<abi::ioctl::GetRegs>(*this);
}

void Vcpu::set_regs(const abi::kvm_regs& regs) {
  if (synced(kSyncRegs)) {
    run_struct().s.regs.regs = regs;
    run_struct().kvm_dirty_regs |= kSyncRegs;
    return;
  }
  set_struct<abi::ioctl::SetRegs>(*this, regs);
}

abi::kvm_sregs Vcpu::sregs() const {
  if (synced(kSyncSregs)) return run_struct().s.regs.sregs;
  return get_struct<abi::ioctl::GetSregs>(*this);
}

void Vcpu::set_sregs(const abi::kvm_sregs& sregs) {
  if (synced(kSyncSregs)) {
    run_struct().s.regs.sregs = sregs;
    run_struct().kvm_dirty_regs |= kSyncSregs;
    return;
  }
  set_struct<abi::ioctl::SetSregs>(*this, sregs);
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
  if (synced(kSyncEvents)) return run_struct().s.regs.events;
  return get_struct<abi::ioctl::GetVcpuEvents>(*this);
}
void Vcpu::set_vcpu_events(const abi::kvm_vcpu_events& e) {
  if (synced(kSyncEvents)) {
    run_struct().s.regs.events = e;
    run_struct().kvm_dirty_regs |= kSyncEvents;
    return;
  }
  set_struct<abi::ioctl::SetVcpuEvents>(*this, e);
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

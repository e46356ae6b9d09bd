#include "kvm/exit.h"

#include <algorithm>
#include <cstring>

namespace kvm {
namespace {

std::uint64_t load_le(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

void store_le(std::uint8_t* p, std::size_t n, std::uint64_t v) noexcept {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::string reason_name(std::uint32_t raw) {
  std::string_view n = abi::to_string(static_cast<ExitReason>(raw));
  return n.empty() ? "KVM_EXIT_#" + std::to_string(raw) : std::string(n);
}

}  // namespace

IoExit::IoExit(const decltype(abi::kvm_run::io)& io, std::span<std::uint8_t> data) noexcept
    : direction_(io.direction), size_(io.size), port_(io.port), count_(io.count), data_(data) {}

std::uint32_t IoExit::value() const noexcept {
  return static_cast<std::uint32_t>(
      load_le(data_.data(), std::min<std::size_t>(size_, data_.size())));
}

void IoExit::set_value(std::uint32_t v) const noexcept {
  store_le(data_.data(), std::min<std::size_t>(size_, data_.size()), v);
}

std::span<std::uint8_t> MmioExit::data() const noexcept { return {mmio_.data, len_}; }

std::uint64_t MmioExit::value() const noexcept { return load_le(mmio_.data, len_); }

void MmioExit::set_value(std::uint64_t v) const noexcept { store_le(mmio_.data, len_, v); }

std::string Exit::name() const { return reason_name(run_->exit_reason); }

void Exit::expect(ExitReason want, const char* accessor) const {
  if (interrupted()) {
    throw WrongExitError(std::string("Exit::") + accessor + "(): the run " +
                         (timed_out() ? "timed out" : "was interrupted") + " (" +
                         (errno_ == EAGAIN ? "EAGAIN" : "EINTR") + "), there is no exit data");
  }
  if (reason() != want) {
    throw WrongExitError(std::string("Exit::") + accessor + "(): this exit is " + name() +
                         ", not " + reason_name(static_cast<std::uint32_t>(want)));
  }
}

void Exit::expect_any(std::initializer_list<ExitReason> want, const char* accessor) const {
  for (ExitReason r : want) {
    if (!interrupted() && reason() == r) return;
  }
  expect(*want.begin(), accessor);
}

IoExit Exit::io() const {
  expect(ExitReason::Io, "io");
  auto& io = run_->io;
  // The kernel places the data inside the mapping; check before trusting it.
  std::uint64_t bytes = std::uint64_t{io.size} * io.count;
  if (io.size != 1 && io.size != 2 && io.size != 4) {
    throw ExitDataError("Exit::io(): access size " + std::to_string(io.size) + " is not 1, 2 or 4");
  }
  if (io.data_offset < sizeof(abi::kvm_run)) {
    throw ExitDataError("Exit::io(): data at offset " + std::to_string(io.data_offset) +
                        " would overlap struct kvm_run itself");
  }
  if (io.data_offset > size_ || bytes > size_ - io.data_offset) {
    throw ExitDataError("Exit::io(): data at offset " + std::to_string(io.data_offset) + " of " +
                        std::to_string(bytes) + " bytes lies outside the " + std::to_string(size_) +
                        "-byte kvm_run mapping");
  }
  auto* base = reinterpret_cast<std::uint8_t*>(run_);
  return IoExit(io, {base + io.data_offset, static_cast<std::size_t>(bytes)});
}

MmioExit Exit::mmio() const {
  expect(ExitReason::Mmio, "mmio");
  if (run_->mmio.len > sizeof(run_->mmio.data)) {
    throw ExitDataError("Exit::mmio(): length " + std::to_string(run_->mmio.len) + " exceeds 8");
  }
  return MmioExit(run_->mmio);
}

SystemEventExit Exit::system_event() const {
  expect(ExitReason::SystemEvent, "system_event");
  auto& e = run_->system_event;
  std::size_t n = std::min<std::size_t>(e.ndata, std::size(e.data));
  return {static_cast<abi::SystemEventType>(e.type), e.flags, {e.data, n}};
}

InternalErrorExit Exit::internal_error() const {
  expect(ExitReason::InternalError, "internal_error");
  auto& e = run_->internal;
  std::size_t n = std::min<std::size_t>(e.ndata, std::size(e.data));
  return {static_cast<abi::InternalErrorSuberror>(e.suberror), {e.data, n}};
}

EmulationFailureExit Exit::emulation_failure() const {
  expect(ExitReason::InternalError, "emulation_failure");
  if (run_->internal.suberror !=
      static_cast<std::uint32_t>(abi::InternalErrorSuberror::Emulation)) {
    throw WrongExitError("Exit::emulation_failure(): internal error suberror " +
                         std::to_string(run_->internal.suberror) +
                         " is not KVM_INTERNAL_ERROR_EMULATION");
  }
  const auto& f = run_->emulation_failure;
  const auto flags = static_cast<abi::EmulationFailureFlags>(f.flags);
  if (abi::to_underlying(flags & abi::EmulationFailureFlags::InstructionBytes) == 0)
    return {flags, {}};
  if (f.insn_size > sizeof(f.insn_bytes)) {
    throw ExitDataError("Exit::emulation_failure(): instruction size " +
                        std::to_string(f.insn_size) + " exceeds the " +
                        std::to_string(sizeof(f.insn_bytes)) + " bytes of insn_bytes");
  }
  return {flags, {f.insn_bytes, f.insn_size}};
}

decltype(abi::kvm_run::msr)& Exit::msr() const {
  expect_any({ExitReason::X86Rdmsr, ExitReason::X86Wrmsr}, "msr");
  return run_->msr;
}

#if defined(KVM_ABI_HAS_KVM_EXIT_MEMORY_FAULT)
MemoryFaultExit Exit::memory_fault() const {
  expect(ExitReason::MemoryFault, "memory_fault");
  const auto& f = run_->memory_fault;
  return {f.gpa, f.size, f.flags, errno_};
}

#endif

#if defined(KVM_ABI_HAS_KVM_EXIT_LOONGARCH_IOCSR)
decltype(abi::kvm_run::iocsr_io)& Exit::loongarch_iocsr() const {
  expect(ExitReason::LoongarchIocsr, "loongarch_iocsr");
  if (run_->iocsr_io.len > sizeof(run_->iocsr_io.data)) {
    throw WrongExitError("Exit::loongarch_iocsr(): length " + std::to_string(run_->iocsr_io.len) +
                         " exceeds 8");
  }
  return run_->iocsr_io;
}

#endif

#if defined(KVM_ABI_HAS_KVM_EXIT_ARM_LDST64B)
// KVM_EXIT_ARM_LDST64B shares its data with KVM_EXIT_ARM_NISV.
decltype(abi::kvm_run::arm_nisv)& Exit::arm_ldst64b() const {
  expect(ExitReason::ArmLdst64b, "arm_ldst64b");
  return run_->arm_nisv;
}

#endif

#if defined(KVM_ABI_HAS_KVM_EXIT_SNP_REQ_CERTS)
abi::kvm_exit_snp_req_certs& Exit::snp_req_certs() const {
  expect(ExitReason::SnpReqCerts, "snp_req_certs");
  return run_->snp_req_certs;
}

#endif

std::uint64_t Exit::s390_reset_flags() const {
  expect(ExitReason::S390Reset, "s390_reset_flags");
  return run_->s390_reset_flags;
}

#define KVM_EXIT_ACCESSOR(method, member, reason_enum)   \
  decltype(abi::kvm_run::member)& Exit::method() const { \
    expect(ExitReason::reason_enum, #method);            \
    return run_->member;                                 \
  }
KVM_EXIT_ACCESSOR(hypercall, hypercall, Hypercall)
KVM_EXIT_ACCESSOR(debug, debug, Debug)
KVM_EXIT_ACCESSOR(fail_entry, fail_entry, FailEntry)
KVM_EXIT_ACCESSOR(exception, ex, Exception)
KVM_EXIT_ACCESSOR(unknown, hw, Unknown)
KVM_EXIT_ACCESSOR(tpr_access, tpr_access, TprAccess)
KVM_EXIT_ACCESSOR(notify, notify, Notify)
KVM_EXIT_ACCESSOR(ioapic_eoi, eoi, IoapicEoi)
KVM_EXIT_ACCESSOR(hyperv, hyperv, Hyperv)
KVM_EXIT_ACCESSOR(xen, xen, Xen)
KVM_EXIT_ACCESSOR(s390_sieic, s390_sieic, S390Sieic)
KVM_EXIT_ACCESSOR(s390_ucontrol, s390_ucontrol, S390Ucontrol)
KVM_EXIT_ACCESSOR(dcr, dcr, Dcr)
KVM_EXIT_ACCESSOR(osi, osi, Osi)
KVM_EXIT_ACCESSOR(papr_hcall, papr_hcall, PaprHcall)
KVM_EXIT_ACCESSOR(s390_tsch, s390_tsch, S390Tsch)
KVM_EXIT_ACCESSOR(epr, epr, Epr)
KVM_EXIT_ACCESSOR(s390_stsi, s390_stsi, S390Stsi)
KVM_EXIT_ACCESSOR(arm_nisv, arm_nisv, ArmNisv)
KVM_EXIT_ACCESSOR(riscv_sbi, riscv_sbi, RiscvSbi)
KVM_EXIT_ACCESSOR(riscv_csr, riscv_csr, RiscvCsr)
#if defined(KVM_ABI_HAS_KVM_EXIT_TDX)
KVM_EXIT_ACCESSOR(tdx, tdx, Tdx)
#endif
#if defined(KVM_ABI_HAS_KVM_EXIT_ARM_SEA)
KVM_EXIT_ACCESSOR(arm_sea, arm_sea, ArmSea)
#endif
#undef KVM_EXIT_ACCESSOR

}  // namespace kvm

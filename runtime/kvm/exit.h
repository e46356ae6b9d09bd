// The typed view of a vCPU exit that Vcpu::run() returns.
//
// An Exit reads the vCPU's mapped kvm_run; it is valid until the next run() of that vCPU.
// reason() may hold a value newer than the generated headers (known() is then false and
// name() says "KVM_EXIT_#<n>"). Each exit reason's data has its own accessor, which checks
// the reason first: asking an IO exit for mmio() throws WrongExitError, never reads the wrong
// union member. Lengths and offsets inside the data (IO data offset and count * size, MMIO
// length, the emulation failure's instruction length, system-event and internal-error ndata)
// are checked before any span is formed, so a corrupt kvm_run cannot make the runtime read out
// of bounds: data that cannot be valid throws ExitDataError.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "kvm/abi/kvm_abi.h"
#include "kvm/abi/names.h"
#include "kvm/error.h"

namespace kvm {

using abi::ExitReason;

// KVM_EXIT_IO: a port access by the guest. For `in`, fill data() before the next run.
class IoExit {
 public:
  bool is_in() const noexcept { return direction_ == 0; }  // KVM_EXIT_IO_IN
  bool is_out() const noexcept { return !is_in(); }
  std::uint16_t port() const noexcept { return port_; }
  std::uint8_t size() const noexcept { return size_; }     // bytes per access: 1, 2 or 4
  std::uint32_t count() const noexcept { return count_; }  // accesses (>1 for rep ins/outs)
  // size() * count() bytes inside the kvm_run mapping, after struct kvm_run.
  std::span<std::uint8_t> data() const noexcept { return data_; }
  // The first access's value, little endian (for the common count == 1 case).
  std::uint32_t value() const noexcept;
  // Sets the first access's value for an `in`.
  void set_value(std::uint32_t v) const noexcept;

 private:
  friend class Exit;
  // The header fields are copied when Exit::io() has validated them: the data span cannot
  // change them afterwards.
  // Defined in exit.cc, as is every span construction of this header: the first std::span
  // constructor a translation unit resolves costs g++ 50-120 M instructions (3-6% of all of
  // kvm/kvm.h), which belongs where the runtime is built, not in every includer.
  IoExit(const decltype(abi::kvm_run::io)& io, std::span<std::uint8_t> data) noexcept;
  std::uint8_t direction_;
  std::uint8_t size_;
  std::uint16_t port_;
  std::uint32_t count_;
  std::span<std::uint8_t> data_;
};

// KVM_EXIT_MMIO: a guest access to an address no memory slot covers. For a read, fill data()
// (or set_value()) before the next run.
class MmioExit {
 public:
  std::uint64_t phys_addr() const noexcept { return mmio_.phys_addr; }
  bool is_write() const noexcept { return mmio_.is_write != 0; }
  std::uint32_t len() const noexcept { return len_; }  // 1..8
  std::span<std::uint8_t> data() const noexcept;
  std::uint64_t value() const noexcept;  // little endian
  void set_value(std::uint64_t v) const noexcept;

 private:
  friend class Exit;
  // len is copied once Exit::mmio() has checked it (<= 8).
  explicit MmioExit(decltype(abi::kvm_run::mmio)& m) noexcept : mmio_(m), len_(m.len) {}
  decltype(abi::kvm_run::mmio)& mmio_;
  std::uint32_t len_;
};

// KVM_EXIT_SYSTEM_EVENT: shutdown, reset, crash... with up to 16 words of data.
struct SystemEventExit {
  abi::SystemEventType type;
  std::uint64_t flags;  // data[0] on kernels before KVM_CAP_SYSTEM_EVENT_DATA
  std::span<const std::uint64_t> data;
};

// KVM_EXIT_INTERNAL_ERROR: KVM could not continue (emulation failure, ...).
struct InternalErrorExit {
  abi::InternalErrorSuberror suberror;
  std::span<const std::uint64_t> data;
};

// KVM_EXIT_INTERNAL_ERROR with suberror KVM_INTERNAL_ERROR_EMULATION: the instruction KVM
// could not emulate, when the kernel reports it (KVM_CAP_EXIT_ON_EMULATION_FAILURE).
struct EmulationFailureExit {
  abi::EmulationFailureFlags flags;
  // The instruction's bytes (at most 15); empty unless flags has InstructionBytes.
  std::span<const std::uint8_t> insn_bytes;
};

#if defined(KVM_ABI_HAS_KVM_EXIT_MEMORY_FAULT)
// KVM_EXIT_MEMORY_FAULT (KVM_CAP_MEMORY_FAULT_INFO): KVM_RUN failed with EFAULT or EHWPOISON
// because KVM could not map guest memory, e.g. a slot's host page is not accessible, or a
// guest access's private/shared state differs from the page's (KVM_MEMORY_EXIT_FLAG_PRIVATE
// says which the guest wanted). The VMM fixes the cause and runs again.
struct MemoryFaultExit {
  std::uint64_t gpa;    // start of the guest-physical range KVM could not map
  std::uint64_t size;   // its length in bytes
  std::uint64_t flags;  // KVM_MEMORY_EXIT_FLAG_*
  int run_errno;        // EFAULT, or EHWPOISON for a poisoned host page
  bool is_private() const noexcept { return (flags & abi::consts::MemoryExitFlagPrivate) != 0; }
};
#endif

enum class RunStatus {
  Exited,       // the guest exited; reason() says why
  Interrupted,  // KVM_RUN returned EINTR or EAGAIN (a signal, a kick, immediate_exit)
  TimedOut,     // Vcpu::run_for(): interrupted, and the deadline has passed
};

class Exit {
 public:
  Exit(abi::kvm_run& run, std::size_t mapped_size, RunStatus status, int err = 0) noexcept
      : run_(&run), size_(mapped_size), status_(status), errno_(err) {}

  RunStatus status() const noexcept { return status_; }
  // True for every run that came back without an exit, timed-out ones included.
  bool interrupted() const noexcept { return status_ != RunStatus::Exited; }
  // Vcpu::run_for() stopped the guest at (or after) its deadline.
  bool timed_out() const noexcept { return status_ == RunStatus::TimedOut; }
  // EINTR or EAGAIN for an interrupted run, EFAULT or EHWPOISON for a memory-fault exit
  // (KVM_RUN failed, but with exit data), else 0.
  int run_errno() const noexcept { return errno_; }

  ExitReason reason() const noexcept { return static_cast<ExitReason>(run_->exit_reason); }
  std::uint32_t raw_reason() const noexcept { return run_->exit_reason; }
  // Whether the generated headers name this reason.
  bool known() const noexcept { return !abi::to_string(reason()).empty(); }
  // "KVM_EXIT_IO", or "KVM_EXIT_#40" for a reason newer than the headers.
  std::string name() const;

  abi::kvm_run& run() const noexcept { return *run_; }

  // --- data, one accessor per exit reason that has any ---------------------------------
  IoExit io() const;                                       // KVM_EXIT_IO
  MmioExit mmio() const;                                   // KVM_EXIT_MMIO
  decltype(abi::kvm_run::hypercall)& hypercall() const;    // KVM_EXIT_HYPERCALL; ret is writable
  decltype(abi::kvm_run::debug)& debug() const;            // KVM_EXIT_DEBUG
  decltype(abi::kvm_run::fail_entry)& fail_entry() const;  // KVM_EXIT_FAIL_ENTRY
  decltype(abi::kvm_run::ex)& exception() const;           // KVM_EXIT_EXCEPTION
  decltype(abi::kvm_run::hw)& unknown() const;             // KVM_EXIT_UNKNOWN
  decltype(abi::kvm_run::tpr_access)& tpr_access() const;  // KVM_EXIT_TPR_ACCESS
  SystemEventExit system_event() const;                    // KVM_EXIT_SYSTEM_EVENT
  InternalErrorExit internal_error() const;                // KVM_EXIT_INTERNAL_ERROR
  // KVM_EXIT_INTERNAL_ERROR with suberror KVM_INTERNAL_ERROR_EMULATION and the failing
  // instruction bytes (KVM_CAP_EXIT_ON_EMULATION_FAILURE); insn_size is checked.
  EmulationFailureExit emulation_failure() const;
  // KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR: set data (for RDMSR) and error (1 injects #GP).
  decltype(abi::kvm_run::msr)& msr() const;
  decltype(abi::kvm_run::notify)& notify() const;                // KVM_EXIT_NOTIFY
  decltype(abi::kvm_run::eoi)& ioapic_eoi() const;               // KVM_EXIT_IOAPIC_EOI
  abi::kvm_hyperv_exit& hyperv() const;                          // KVM_EXIT_HYPERV
  abi::kvm_xen_exit& xen() const;                                // KVM_EXIT_XEN
  decltype(abi::kvm_run::s390_sieic)& s390_sieic() const;        // KVM_EXIT_S390_SIEIC
  std::uint64_t s390_reset_flags() const;                        // KVM_EXIT_S390_RESET
  decltype(abi::kvm_run::s390_ucontrol)& s390_ucontrol() const;  // KVM_EXIT_S390_UCONTROL
  decltype(abi::kvm_run::dcr)& dcr() const;                      // KVM_EXIT_DCR (deprecated)
  decltype(abi::kvm_run::osi)& osi() const;                      // KVM_EXIT_OSI
  decltype(abi::kvm_run::papr_hcall)& papr_hcall() const;        // KVM_EXIT_PAPR_HCALL
  decltype(abi::kvm_run::s390_tsch)& s390_tsch() const;          // KVM_EXIT_S390_TSCH
  decltype(abi::kvm_run::epr)& epr() const;                      // KVM_EXIT_EPR
  decltype(abi::kvm_run::s390_stsi)& s390_stsi() const;          // KVM_EXIT_S390_STSI
  decltype(abi::kvm_run::arm_nisv)& arm_nisv() const;            // KVM_EXIT_ARM_NISV
  decltype(abi::kvm_run::riscv_sbi)& riscv_sbi() const;          // KVM_EXIT_RISCV_SBI
  decltype(abi::kvm_run::riscv_csr)& riscv_csr() const;          // KVM_EXIT_RISCV_CSR
#if defined(KVM_ABI_HAS_KVM_EXIT_MEMORY_FAULT)
  // KVM_EXIT_MEMORY_FAULT, which comes with KVM_RUN's EFAULT/EHWPOISON instead of success.
  MemoryFaultExit memory_fault() const;
#endif
#if defined(KVM_ABI_HAS_KVM_EXIT_LOONGARCH_IOCSR)
  // KVM_EXIT_LOONGARCH_IOCSR: an IOCSR access, shaped like MMIO; len is checked (<= 8).
  decltype(abi::kvm_run::iocsr_io)& loongarch_iocsr() const;
#endif
#if defined(KVM_ABI_HAS_KVM_EXIT_TDX)
  decltype(abi::kvm_run::tdx)& tdx() const;  // KVM_EXIT_TDX (a TDVMCALL)
#endif
#if defined(KVM_ABI_HAS_KVM_EXIT_ARM_SEA)
  decltype(abi::kvm_run::arm_sea)& arm_sea() const;  // KVM_EXIT_ARM_SEA
#endif
#if defined(KVM_ABI_HAS_KVM_EXIT_ARM_LDST64B)
  decltype(abi::kvm_run::arm_nisv)& arm_ldst64b() const;  // KVM_EXIT_ARM_LDST64B
#endif
#if defined(KVM_ABI_HAS_KVM_EXIT_SNP_REQ_CERTS)
  abi::kvm_exit_snp_req_certs& snp_req_certs() const;  // KVM_EXIT_SNP_REQ_CERTS
#endif
  // KVM_EXIT_X86_BUS_LOCK carries no union data, only KVM_RUN_X86_BUS_LOCK in run().flags.
  // HLT, IRQ_WINDOW_OPEN, SHUTDOWN, INTR, SET_TPR, NMI, WATCHDOG, DIRTY_RING_FULL and
  // AP_RESET_HOLD carry no data: reason() is all there is.

 private:
  void expect(ExitReason want, const char* accessor) const;
  void expect_any(std::initializer_list<ExitReason> want, const char* accessor) const;

  abi::kvm_run* run_;
  std::size_t size_;
  RunStatus status_;
  int errno_;
};

}  // namespace kvm

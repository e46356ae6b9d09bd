// kvm::VmType: the machine type KVM_CREATE_VM takes, typed per arch, so that
// System::create_vm() can check it against what the host offers before asking the kernel:
// on x86 one of the KVM_X86_*_VM types, among the bits of KVM_CAP_VM_TYPES; on arm64 the
// guest's IPA (guest-physical address) size, within KVM_CAP_ARM_VM_IPA_SIZE.
#pragma once

#include <cstdint>
#include <string>

#include "kvm/abi/kvm_abi.h"

namespace kvm {

#if defined(__x86_64__)
// KVM_X86_*_VM: the VM types of x86 (KVM_CAP_VM_TYPES reports which the host offers, one bit
// per type). The kernel ABI's values, so that they exist with headers older than them too.
enum class X86VmType : unsigned long {
  Default = 0,      // KVM_X86_DEFAULT_VM
  SwProtected = 1,  // KVM_X86_SW_PROTECTED_VM (guest_memfd tests)
  Sev = 2,          // KVM_X86_SEV_VM
  SevEs = 3,        // KVM_X86_SEV_ES_VM
  Snp = 4,          // KVM_X86_SNP_VM
  Tdx = 5,          // KVM_X86_TDX_VM
};
#if defined(KVM_ABI_HAS_KVM_X86_TDX_VM)
static_assert(static_cast<unsigned long>(X86VmType::Sev) == abi::consts::X86SevVm);
static_assert(static_cast<unsigned long>(X86VmType::Tdx) == abi::consts::X86TdxVm);
#endif
#endif

class VmType {
 public:
  // The default machine type (0), which every host offers.
  constexpr VmType() noexcept = default;
#if defined(__x86_64__)
  constexpr explicit VmType(X86VmType type) noexcept : value_(static_cast<unsigned long>(type)) {}
#endif
#if defined(__aarch64__)
  // KVM_VM_TYPE_ARM_IPA_SIZE(bits): a guest-physical address space of `bits` bits (32 up to
  // KVM_CAP_ARM_VM_IPA_SIZE); 0 is the default of 40 bits.
  static constexpr VmType arm_ipa_bits(unsigned bits) noexcept {
    return raw(bits & abi::consts::VmTypeArmIpaSizeMask);
  }
  unsigned ipa_bits() const noexcept {
    return static_cast<unsigned>(value_ & abi::consts::VmTypeArmIpaSizeMask);
  }
#endif
  // Any value, for types newer than this library (checked by the kernel alone where the
  // runtime cannot judge it).
  static constexpr VmType raw(unsigned long value) noexcept {
    VmType t;
    t.value_ = value;
    return t;
  }

  unsigned long value() const noexcept { return value_; }
  bool is_default() const noexcept { return value_ == 0; }
  // "KVM_X86_SEV_VM", "IPA size 48 bits", "machine type 7".
  std::string name() const;

 private:
  unsigned long value_ = 0;
};

namespace detail {
// Throws kvm::Error (KVM_CREATE_VM, EINVAL) when the host does not offer `type`, asking
// KVM_CHECK_EXTENSION on `system_fd`; the default type is never refused.
void check_vm_type(int system_fd, VmType type);
}  // namespace detail

}  // namespace kvm

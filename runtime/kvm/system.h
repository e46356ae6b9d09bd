// kvm::System: the /dev/kvm handle. Creates VMs and answers system-wide questions (API
// version, capabilities, supported CPUID and MSRs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvm/abi/kvm_abi.h"
#include "kvm/fd.h"
#include "kvm/ioctl.h"
#include "kvm/vm.h"
#include "kvm/vm_type.h"
#include "kvm/x86_types.h"

namespace kvm {

// The API version every kernel since 2.6.22 reports (KVM_API_VERSION).
inline constexpr int kStableApiVersion = 12;

class System : public IoctlTarget<System, abi::Scope::System> {
 public:
  // Opens /dev/kvm (or `path`) with O_RDWR|O_CLOEXEC and checks the API version.
  System();
  explicit System(const std::string& path);

  int fd() const noexcept { return fd_.get(); }

  // KVM_GET_API_VERSION: the API version; always 12 on kernels this library supports.
  int api_version() const;

  // KVM_CHECK_EXTENSION on /dev/kvm: 0 when the capability is absent, otherwise 1 or a
  // capability-specific number (KVM_CAP_NR_MEMSLOTS gives the slot count, ...). Takes
  // capabilities newer than the generated headers as well: abi::Cap{230}.
  int check_extension(abi::Cap cap) const;

  // KVM_GET_VCPU_MMAP_SIZE: bytes of the per-vCPU shared region (kvm_run and the rings after
  // it). Read once and cached.
  std::size_t vcpu_mmap_size() const;

  // KVM_CREATE_VM of the given machine type (kvm/vm_type.h), the default one unless told.
  // Another type is checked first, with KVM_CHECK_EXTENSION, against what the host offers: on
  // x86 the bits of KVM_CAP_VM_TYPES, on arm64 the IPA size within KVM_CAP_ARM_VM_IPA_SIZE.
  Vm create_vm(VmType type = {}) const;
#if defined(__aarch64__)
  // The largest guest IPA size, in bits, VmType::arm_ipa_bits() may ask for
  // (KVM_CAP_ARM_VM_IPA_SIZE); 0 when the host only offers the default 40 bits.
  unsigned max_ipa_bits() const;
#endif

#if defined(__x86_64__)
  // KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for guests.
  std::vector<std::uint32_t> msr_index_list() const;
  // KVM_GET_MSR_FEATURE_INDEX_LIST (KVM_CAP_GET_MSR_FEATURES): MSRs describing host features,
  // readable with get_msrs() on this fd.
  std::vector<std::uint32_t> msr_feature_index_list() const;
  // KVM_GET_MSRS on /dev/kvm (KVM_CAP_GET_MSR_FEATURES): reads feature MSRs; fills each
  // entry's data and returns how many were read.
  int get_msrs(Msrs& msrs) const;
  // KVM_GET_SUPPORTED_CPUID (KVM_CAP_EXT_CPUID): CPUID leaves supported by both the hardware
  // and KVM, the starting point for a vCPU's table.
  Cpuid supported_cpuid() const;
  // KVM_GET_EMULATED_CPUID (KVM_CAP_EXT_EMUL_CPUID): features KVM emulates in software.
  Cpuid emulated_cpuid() const;
#endif

 private:
  Fd fd_;
  mutable std::size_t mmap_size_ = 0;
  mutable bool have_limits_ = false;
  mutable VmLimits limits_;
};

}  // namespace kvm

#include "kvm/vm_type.h"

#include <cerrno>
#include <sstream>

#include "kvm/error.h"
#include "kvm/ioctl.h"

namespace kvm {
namespace {

#if defined(__x86_64__) || defined(__aarch64__)
constexpr const char* kCreateVm = "KVM_CREATE_VM";
#endif

#if defined(__x86_64__)
// KVM_CAP_VM_TYPES, also where these headers predate it (a newer kernel still answers).
constexpr unsigned kCapVmTypes = 235;
#if defined(KVM_ABI_HAS_KVM_CAP_VM_TYPES)
static_assert(kCapVmTypes == abi::to_underlying(abi::Cap::VmTypes));
#endif

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

const char* x86_type_name(unsigned long value) {
  switch (static_cast<X86VmType>(value)) {
    case X86VmType::Default:
      return "KVM_X86_DEFAULT_VM";
    case X86VmType::SwProtected:
      return "KVM_X86_SW_PROTECTED_VM";
    case X86VmType::Sev:
      return "KVM_X86_SEV_VM";
    case X86VmType::SevEs:
      return "KVM_X86_SEV_ES_VM";
    case X86VmType::Snp:
      return "KVM_X86_SNP_VM";
    case X86VmType::Tdx:
      return "KVM_X86_TDX_VM";
  }
  return nullptr;
}

// "0x1 (KVM_X86_DEFAULT_VM)": the bits of KVM_CAP_VM_TYPES with the names we know.
std::string offered_types(int mask) {
  std::string names;
  for (unsigned long t = 0; t < 32; ++t) {
    if (!(mask & (1 << t))) continue;
    const char* n = x86_type_name(t);
    if (!names.empty()) names += ", ";
    names += n ? n : "type " + std::to_string(t);
  }
  return hex(static_cast<unsigned>(mask)) + " (" + names + ")";
}

void check_x86_type(int system_fd, VmType type) {
  int mask = detail::check_extension(system_fd, kCapVmTypes);
  if (mask <= 0) {
    throw Error(kCreateVm, EINVAL,
                type.name() + ": KVM_CAP_VM_TYPES is not supported here, only the default type");
  }
  if (type.value() >= 32 || !(mask & (1 << type.value()))) {
    throw Error(kCreateVm, EINVAL,
                type.name() + " is not among the VM types this host offers: KVM_CAP_VM_TYPES = " +
                    offered_types(mask));
  }
}
#endif

#if defined(__aarch64__)
void check_arm_type(int system_fd, VmType type) {
  unsigned bits = type.ipa_bits();
  if (bits == 0) return;  // the default IPA size; other bits are the kernel's to judge
  int max = detail::check_extension(system_fd, abi::to_underlying(abi::Cap::ArmVmIpaSize));
  if (max <= 0) {
    throw Error(kCreateVm, EINVAL,
                type.name() + ": KVM_CAP_ARM_VM_IPA_SIZE is not supported here, only 40 bits");
  }
  if (bits < 32 || bits > static_cast<unsigned>(max)) {
    throw Error(kCreateVm, EINVAL,
                type.name() + " is outside 32 .. KVM_CAP_ARM_VM_IPA_SIZE " + std::to_string(max));
  }
}
#endif

}  // namespace

std::string VmType::name() const {
#if defined(__x86_64__)
  if (const char* n = x86_type_name(value_)) return n;
#endif
#if defined(__aarch64__)
  if ((value_ & ~abi::consts::VmTypeArmIpaSizeMask) == 0 && value_ != 0)
    return "IPA size " + std::to_string(ipa_bits()) + " bits";
#endif
  return "machine type " + std::to_string(value_);
}

namespace detail {

void check_vm_type(int system_fd, VmType type) {
  if (type.is_default()) return;
#if defined(__x86_64__)
  check_x86_type(system_fd, type);
#elif defined(__aarch64__)
  check_arm_type(system_fd, type);
#else
  (void)system_fd;
#endif
}

}  // namespace detail
}  // namespace kvm

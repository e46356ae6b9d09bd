// KVM_SET_MEMORY_ATTRIBUTES: per-page attributes of guest memory (today only
// KVM_MEMORY_ATTRIBUTE_PRIVATE, for confidential guests backed by guest_memfd).
#include <cerrno>
#include <sstream>
#include <string>

#include "kvm/vm.h"

namespace kvm {
#if defined(KVM_ABI_HAS_KVM_SET_MEMORY_ATTRIBUTES)
namespace {

constexpr const char* kSetAttributes = "KVM_SET_MEMORY_ATTRIBUTES";
constexpr std::uint64_t kPageSize = 4096;

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

std::string attribute_names(std::uint64_t attributes) {
  std::string text = hex(attributes);
  if (attributes & abi::consts::MemoryAttributePrivate) text += " (KVM_MEMORY_ATTRIBUTE_PRIVATE)";
  return text;
}

}  // namespace

void Vm::set_memory_attributes(std::uint64_t gpa, std::uint64_t size,
                               std::uint64_t attributes) const {
  const std::string what = "[" + hex(gpa) + ", " + hex(gpa + size) + ")";
  if (size == 0 || gpa % kPageSize || size % kPageSize || gpa + size < gpa) {
    throw Error(kSetAttributes, EINVAL,
                what + " is not a non-empty, 4 KiB aligned range of guest addresses");
  }
  auto offered = static_cast<std::uint64_t>(check_extension(abi::Cap::MemoryAttributes));
  if (offered == 0) {
    throw Error(kSetAttributes, EINVAL,
                what + ": KVM_CAP_MEMORY_ATTRIBUTES is not supported here (it reads 0)");
  }
  if (attributes & ~offered) {
    throw Error(kSetAttributes, EINVAL,
                what + ": attributes " + attribute_names(attributes & ~offered) +
                    " not among KVM_CAP_MEMORY_ATTRIBUTES " + attribute_names(offered));
  }
  abi::kvm_memory_attributes arg{};
  arg.address = gpa;
  arg.size = size;
  arg.attributes = attributes;
  ioctl<abi::ioctl::SetMemoryAttributes>(arg, what + " to " + attribute_names(attributes));
}
#endif

}  // namespace kvm

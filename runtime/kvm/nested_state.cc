#include "kvm/nested_state.h"

#include <cerrno>
#include <string>

#include "kvm/error.h"
#include "kvm/ioctl.h"
#include "kvm/vcpu.h"

namespace kvm {

#if defined(__x86_64__)
namespace {

constexpr std::size_t kHeader = sizeof(abi::kvm_nested_state);
constexpr unsigned kCap = abi::to_underlying(abi::Cap::NestedState);

// KVM_CAP_NESTED_STATE: the largest nested state of this host, or an error naming the cap.
std::size_t max_nested_state(const char* ioctl_name) {
  int max = detail::check_extension(-1, kCap);
  if (max <= 0) {
    throw Error(ioctl_name, EINVAL,
                "KVM_CAP_NESTED_STATE is not supported here (it reads " + std::to_string(max) +
                    "): the host keeps no nested virtualization state");
  }
  return static_cast<std::size_t>(max);
}

}  // namespace

NestedState::NestedState(std::size_t capacity) : capacity_(capacity) {
  if (capacity < kHeader) {
    throw Error("kvm::NestedState", EINVAL,
                std::to_string(capacity) + " bytes cannot hold struct kvm_nested_state (" +
                    std::to_string(kHeader) + " bytes)");
  }
  storage_.resize((capacity + 7) / 8);
  header().size = static_cast<std::uint32_t>(capacity);
}

std::span<const std::uint8_t> NestedState::bytes() const {
  std::uint32_t used = header().size;
  if (used < kHeader || used > capacity_) {
    throw Error("kvm::NestedState", EINVAL,
                "header size " + std::to_string(used) + " is outside " + std::to_string(kHeader) +
                    " .. the buffer's " + std::to_string(capacity_) + " bytes");
  }
  return {reinterpret_cast<const std::uint8_t*>(storage_.data()), used};
}

NestedState Vcpu::nested_state() const {
  NestedState state(max_nested_state("KVM_GET_NESTED_STATE"));
  ioctl<abi::ioctl::GetNestedState>(state.header(),
                                    "buffer of " + std::to_string(state.capacity()) + " bytes");
  return state;
}

void Vcpu::set_nested_state(const NestedState& state) const {
  std::span<const std::uint8_t> used = state.bytes();  // checks the header against the buffer
  std::size_t max = max_nested_state("KVM_SET_NESTED_STATE");
  if (used.size() > max) {
    throw Error("KVM_SET_NESTED_STATE", EINVAL,
                "state of " + std::to_string(used.size()) + " bytes > KVM_CAP_NESTED_STATE " +
                    std::to_string(max));
  }
  NestedState copy = state;  // the kernel's argument is not const
  ioctl<abi::ioctl::SetNestedState>(copy.header(), std::to_string(used.size()) + " bytes");
}
#endif

}  // namespace kvm

// kvm::NestedState: the buffer of KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE (x86): a
// struct kvm_nested_state header followed by the VMX or SVM data of a vCPU that runs a nested
// guest. Its size is the host's KVM_CAP_NESTED_STATE (the largest state KVM may write); the
// header's `size` says how much of it the state uses, and is kept within the buffer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kvm/abi/kvm_abi.h"

namespace kvm {

#if defined(__x86_64__)
class NestedState {
 public:
  // A zeroed buffer of `capacity` bytes (at least sizeof(kvm_nested_state)) whose header's
  // size is `capacity`; throws kvm::Error (EINVAL) for less.
  explicit NestedState(std::size_t capacity);

  abi::kvm_nested_state& header() noexcept {
    return *reinterpret_cast<abi::kvm_nested_state*>(storage_.data());
  }
  const abi::kvm_nested_state& header() const noexcept {
    return *reinterpret_cast<const abi::kvm_nested_state*>(storage_.data());
  }
  std::size_t capacity() const noexcept { return capacity_; }
  // The bytes the header's size covers (after a check that they fit the buffer).
  std::span<const std::uint8_t> bytes() const;

 private:
  std::vector<std::uint64_t> storage_;  // 8-byte aligned, as the header's members need
  std::size_t capacity_ = 0;
};
#endif

}  // namespace kvm

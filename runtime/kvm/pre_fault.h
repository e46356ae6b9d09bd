// The progress loop of KVM_PRE_FAULT_MEMORY, apart from the vCPU so it can be tested without a
// host that has the feature. The kernel maps what it can of [gpa, gpa + size) and updates the
// argument to the range still to do; an interruption (EINTR, EAGAIN) leaves the rest for a
// retry with the same argument.
#pragma once

#include <cstdint>

#include "kvm/abi/kvm_abi.h"
#include "kvm/function_ref.h"

namespace kvm::detail {

#if defined(KVM_ABI_HAS_KVM_PRE_FAULT_MEMORY)
// Issues `issue` (one KVM_PRE_FAULT_MEMORY, returning 0 or -errno) until the range is done,
// resuming after EINTR/EAGAIN. Returns the bytes pre-faulted (all of `size`); on another
// error throws kvm::Error naming how many bytes from `gpa` were done before it, and
// KVM_CAP_PRE_FAULT_MEMORY when the host lacks it (asked of `check_fd`, -1 for /dev/kvm).
std::uint64_t pre_fault_loop(std::uint64_t gpa, std::uint64_t size, int check_fd,
                             FunctionRef<int(abi::kvm_pre_fault_memory&)> issue);
#endif

}  // namespace kvm::detail

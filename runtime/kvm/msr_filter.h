// kvm::MsrFilter: a checked builder for KVM_X86_SET_MSR_FILTER (x86). Each range covers
// `count` MSRs from `base` for reads, writes or both, with one bitmap bit per MSR (1 allows
// the access, 0 denies it: a denied access exits to userspace with KVM_MSR_EXIT_REASON_FILTER
// or injects #GP); MSRs in no range get the default action. Everything the kernel would
// refuse is refused when the range is added, naming what was wrong.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kvm/abi/kvm_abi.h"

namespace kvm {

#if defined(__x86_64__)
class MsrFilter {
 public:
  using Access = abi::MsrFilterRangeFlags;  // Read, Write, or Read | Write

  // MSRs in no range are allowed (KVM_MSR_FILTER_DEFAULT_ALLOW) or denied (..._DENY).
  explicit MsrFilter(abi::MsrFilterDefault default_action = abi::MsrFilterDefault::Allow);

  // Adds a range with its bitmap of (count + 7) / 8 bytes (bit i is MSR base + i). Throws
  // kvm::Error (KVM_X86_SET_MSR_FILTER, EINVAL) beyond KVM_MSR_FILTER_MAX_RANGES ranges, for
  // an empty range or one past MSR 0xffffffff, a bitmap of the wrong size or beyond
  // KVM_MSR_FILTER_MAX_BITMAP_SIZE bytes, and access flags other than Read and/or Write.
  MsrFilter& add_range(Access access, std::uint32_t base, std::uint32_t count,
                       std::span<const std::uint8_t> bitmap);
  // A range whose every MSR is denied (or allowed) for `access`.
  MsrFilter& deny(Access access, std::uint32_t base, std::uint32_t count = 1);
  MsrFilter& allow(Access access, std::uint32_t base, std::uint32_t count = 1);

  std::size_t ranges() const noexcept { return ranges_.size(); }
  // The kernel's struct, pointing into this builder's bitmaps (valid while it lives unchanged).
  abi::kvm_msr_filter to_kernel() const;

 private:
  struct Range {
    Access access;
    std::uint32_t base;
    std::uint32_t count;
    std::vector<std::uint8_t> bitmap;
  };
  abi::MsrFilterDefault default_action_;
  std::vector<Range> ranges_;
};
#endif

}  // namespace kvm

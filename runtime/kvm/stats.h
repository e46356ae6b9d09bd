// Reading the binary statistics of a VM or vCPU (KVM_GET_STATS_FD, KVM_CAP_BINARY_STATS_FD):
// the header, every descriptor and the current values, decoded and checked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kvm/abi/kvm_abi.h"

namespace kvm {

struct Stat {
  std::string name;
  std::uint32_t flags = 0;            // type | unit | base, see the accessors
  std::int16_t exponent = 0;          // value * base^exponent is in `unit`
  std::uint32_t bucket_size = 0;      // for linear histograms
  std::vector<std::uint64_t> values;  // one for counters, one per bucket for histograms

  // The three fields of `flags`. A kernel newer than the headers may use values without a
  // name: to_string() then gives "" and the number is still there (to_underlying()).
  abi::StatsType type() const noexcept {
    return static_cast<abi::StatsType>(flags & abi::consts::StatsTypeMask);
  }
  abi::StatsUnit unit() const noexcept {
    return static_cast<abi::StatsUnit>(flags & abi::consts::StatsUnitMask);
  }
  abi::StatsBase base() const noexcept {
    return static_cast<abi::StatsBase>(flags & abi::consts::StatsBaseMask);
  }
};

struct Stats {
  std::string id;  // e.g. "kvm-1234/vcpu-0"
  std::vector<Stat> stats;
  // nullptr when the kernel has no statistic of that name.
  const Stat* find(std::string_view name) const noexcept;
};

// Reads everything from a stats fd (Vm::stats_fd() / Vcpu::stats_fd()). Each call re-reads the
// values; descriptors are read each time too, so a reader needs no state. Throws kvm::Error on
// I/O errors or a malformed layout.
Stats read_stats(int stats_fd);

}  // namespace kvm

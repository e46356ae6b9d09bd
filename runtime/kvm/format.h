// Numbers in error messages, written one way everywhere: the runtime and the x86 guest helpers
// (which depend on nothing else of the runtime) both use it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace kvm::detail {

// 0x1f000
inline std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// [0x1000, 0x3000): `size` bytes from `start`.
inline std::string hex_range(std::uint64_t start, std::uint64_t size) {
  return "[" + hex(start) + ", " + hex(start + size) + ")";
}

}  // namespace kvm::detail

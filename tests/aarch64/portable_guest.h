// The guest programs tests/portable/ needs, in arm64 code: each arch has this header with
// the same names, so one test source runs on both.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "arm_guest.h"

namespace testing::portable {

using Guest = ArmGuest;
using testing::kMmioBase;
using testing::kRamBase;
using testing::kRamSize;

// What a jump outside guest memory does on this arch: KVM injects a prefetch abort; with
// VBAR_EL1 = 0 outside memory too, the guest takes aborts forever.
enum class JumpOutOfMemory { Spins, SpinsOrRunFails };
inline constexpr JumpOutOfMemory kJumpOutOfMemory = JumpOutOfMemory::Spins;

// 8-byte stores of value to addr, in order, then power-off.
inline kvm::Vcpu start_stores(Guest& g,
                              const std::vector<std::pair<std::uint64_t, std::uint64_t>>& stores) {
  return g.start([&](Assembler& a) {
    for (auto [addr, value] : stores) {
      a.mov(x(1), addr);
      a.mov(x(2), value);
      a.str(8, x(2), x(1));
    }
    system_off(a);
  });
}

// A loop that never exits.
inline kvm::Vcpu start_spin(Guest& g) {
  return g.start([](Assembler& a) {
    auto spin = a.new_label();
    a.bind(spin);
    a.b(spin);
  });
}

// A jump to `target`, which need not be memory.
inline kvm::Vcpu start_jump(Guest& g, std::uint64_t target) {
  return g.start([&](Assembler& a) {
    a.mov(x(1), target);
    a.word(0xd61f0000u | 1u << 5);  // br x1
  });
}

}  // namespace testing::portable

// The guest programs tests/portable/ needs, in riscv64 code: each arch has this header with
// the same names, so one test source runs on both.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "rv_guest.h"

namespace testing::portable {

using Guest = RvGuest;
using testing::kMmioBase;
using testing::kRamBase;
using testing::kRamSize;

// What a jump outside guest memory does on this arch: Linux 6.12 fails KVM_RUN with
// EOPNOTSUPP; newer kernels inject an instruction access fault, and with stvec = 0 outside
// memory too the guest takes faults forever.
enum class JumpOutOfMemory { Spins, SpinsOrRunFails };
inline constexpr JumpOutOfMemory kJumpOutOfMemory = JumpOutOfMemory::SpinsOrRunFails;

// 8-byte stores of value to addr, in order, then SBI shutdown.
inline kvm::Vcpu start_stores(Guest& g,
                              const std::vector<std::pair<std::uint64_t, std::uint64_t>>& stores) {
  return g.start([&](Assembler& a) {
    for (auto [addr, value] : stores) {
      a.li(Reg::t0, addr);
      a.li(Reg::t1, value);
      a.store(8, Reg::t1, Reg::t0);
    }
    sbi_shutdown(a);
  });
}

// A loop that never exits.
inline kvm::Vcpu start_spin(Guest& g) {
  return g.start([](Assembler& a) {
    auto spin = a.new_label();
    a.bind(spin);
    a.j(spin);
  });
}

// A jump to `target`, which need not be memory.
inline kvm::Vcpu start_jump(Guest& g, std::uint64_t target) {
  return g.start([&](Assembler& a) {
    a.li(Reg::t0, target);
    a.word(0x00028067);  // jalr x0, 0(t0)
  });
}

}  // namespace testing::portable

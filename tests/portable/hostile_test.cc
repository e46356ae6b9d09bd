// Hostile guests on any arch (aarch64 and riscv64 under tools/qemu/): accesses at and between
// slot edges, writes to read-only memory, a jump out of memory, a guest that never exits.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>

#include "delayed_kick.h"
#include "portable_guest.h"

using namespace testing::portable;
using testing::DelayedKick;
using namespace std::chrono_literals;
using kvm::ExitReason;

TEST_CASE("hostile: stores at the edges of and between memory slots") {
  Guest g;
  // A second slot of 64 KiB, a 64 KiB hole, then a third.
  constexpr std::uint64_t kA = 0x60000000, kSize = 0x10000;
  g.mem.add(g.vm, kA, kSize);
  g.mem.add(g.vm, kA + 2 * kSize, kSize);
  kvm::Vcpu v = start_stores(g, {{kA + kSize - 8, 1},      // last word of the slot
                                 {kA + kSize, 2},          // first byte of the hole
                                 {kA + 2 * kSize - 8, 3},  // last word of the hole
                                 {kA + 2 * kSize, 4}});    // first word of the next slot
  kvm::Exit e = Guest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kA + kSize);
  CHECK(e.mmio().value() == 2);
  e = Guest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kA + 2 * kSize - 8);
  CHECK(e.mmio().value() == 3);
  REQUIRE(Guest::run(v).reason() == ExitReason::SystemEvent);
  CHECK(g.mem.read_obj<std::uint64_t>(kA + kSize - 8) == 1);
  CHECK(g.mem.read_obj<std::uint64_t>(kA + 2 * kSize) == 4);
}

TEST_CASE("hostile: a write to read-only memory is an MMIO exit, the memory stays unchanged") {
  Guest g;
  if (g.sys.check_extension(kvm::abi::Cap::ReadonlyMem) <= 0) {
    std::fprintf(stderr, "SKIPPED: the host reports KVM_CAP_READONLY_MEM = 0\n");
    WARN("the host reports KVM_CAP_READONLY_MEM = 0");
    return;
  }
  constexpr std::uint64_t kRom = 0x70000000;
  auto rom = g.mem.add(g.vm, kRom, 0x1000, kvm::abi::MemoryFlags::Readonly);
  std::memset(rom.data(), 0xaa, rom.size());
  kvm::Vcpu v = start_stores(g, {{kRom + 0x10, 0x1234}});
  kvm::Exit e = Guest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().is_write());
  CHECK(e.mmio().phys_addr() == kRom + 0x10);
  CHECK(e.mmio().value() == 0x1234);
  CHECK(Guest::run(v).reason() == ExitReason::SystemEvent);
  CHECK(g.mem.read_obj<std::uint64_t>(kRom + 0x10) == 0xaaaa'aaaa'aaaa'aaaa);
}

TEST_CASE("hostile: a jump out of memory does not hang the VMM") {
  Guest g;
  kvm::Vcpu v = start_jump(g, 0x7000'0000);  // no slot there
  // arm64 injects a prefetch abort, riscv64 since Linux 6.13 or so an instruction access
  // fault; the vector (VBAR_EL1 / stvec = 0) is outside memory too, so the guest takes
  // faults forever and only a deadline ends the run. Older riscv64 kernels fail KVM_RUN.
  try {
    kvm::Exit e = v.run_for(100ms);
    CHECK(e.timed_out());
    CHECK(v.run_for(10ms).timed_out());
  } catch (const kvm::Error& e) {
    INFO(e.what());
    CHECK(kJumpOutOfMemory == JumpOutOfMemory::SpinsOrRunFails);
    CHECK(e.operation() == "KVM_RUN");
    CHECK(e.errno_value() == EOPNOTSUPP);
  }
}

TEST_CASE("hostile: a guest that never exits is stopped by the VMM's watchdog, again and again") {
  Guest g;
  kvm::Vcpu v = start_spin(g);
  for (int i = 0; i < 3; ++i) {
    DelayedKick kick(v, 20ms);
    kvm::Exit e = v.run();
    CHECK(e.interrupted());
  }
  CHECK(v.run_for(10ms).timed_out());
}

// arm64 guests on real KVM (run inside QEMU by tools/qemu/run.sh): vCPU init with the
// preferred target, registers through ONE_REG, MMIO of every size, PSCI SYSTEM_OFF, the
// register list.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "arm_guest.h"

using namespace testing;
using kvm::ExitReason;
namespace a64 = kvm::aarch64;

TEST_CASE("aarch64: the preferred target initialises a vCPU and PSCI SYSTEM_OFF ends the run") {
  ArmGuest g;
  CHECK(g.init.target < 64);
  kvm::Vcpu v = g.start([](Assembler& a) { system_off(a); });
  kvm::Exit e = ArmGuest::run(v);
  REQUIRE(e.reason() == ExitReason::SystemEvent);
  CHECK(e.system_event().type == kvm::abi::SystemEventType::Shutdown);
}

TEST_CASE("aarch64: PC, X registers and PSTATE through ONE_REG") {
  ArmGuest g;
  // x2 = x0 + x1 via add-immediates is not possible, so: x2 = x0 + 5, then report x2 by MMIO.
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.add(x(2), x(0), 5);
    a.mov(x(3), kMmioBase);
    a.str(8, x(2), x(3));
    system_off(a);
  });
  CHECK(v.one_reg_u64(a64::kRegPc) == kRamBase);
  CHECK(v.one_reg_u64(a64::kRegPstate) == a64::kPstateEl1hMasked);
  std::uint64_t x0 = 0x1234'5678'9abc'def0;
  v.set_one_reg(a64::reg_x(0), &x0);
  CHECK(v.one_reg_u64(a64::reg_x(0)) == x0);

  kvm::Exit e = ArmGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().value() == x0 + 5);
  // The exit leaves PC on the store: KVM advances it when the access completes on re-entry.
  CHECK(v.one_reg_u64(a64::reg_x(2)) == x0 + 5);
  CHECK(ArmGuest::run(v).reason() == ExitReason::SystemEvent);
}

TEST_CASE("aarch64: MMIO writes and reads of 1, 2, 4 and 8 bytes") {
  ArmGuest g;
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.mov(x(1), kMmioBase);
    a.mov(x(2), 0x1122'3344'5566'7788);
    unsigned offset = 0;
    for (unsigned bytes : {1u, 2u, 4u, 8u}) {
      a.str(bytes, x(2), x(1), offset);
      offset += 8;
    }
    // Read each size and write what came back to kMmioBase + 0x100, so the host sees it.
    offset = 0;
    for (unsigned bytes : {1u, 2u, 4u, 8u}) {
      a.ldr(bytes, x(3), x(1), offset);
      a.str(8, x(3), x(1), 0x100);
      offset += 8;
    }
    system_off(a);
  });
  unsigned offset = 0;
  for (unsigned bytes : {1u, 2u, 4u, 8u}) {
    kvm::Exit e = ArmGuest::run(v);
    REQUIRE(e.reason() == ExitReason::Mmio);
    CHECK(e.mmio().is_write());
    CHECK(e.mmio().phys_addr() == kMmioBase + offset);
    CHECK(e.mmio().len() == bytes);
    std::uint64_t mask = bytes == 8 ? ~0ull : (1ull << (8 * bytes)) - 1;
    CHECK(e.mmio().value() == (0x1122'3344'5566'7788 & mask));
    offset += 8;
  }
  offset = 0;
  for (unsigned bytes : {1u, 2u, 4u, 8u}) {
    kvm::Exit e = ArmGuest::run(v);
    REQUIRE(e.reason() == ExitReason::Mmio);
    CHECK_FALSE(e.mmio().is_write());
    CHECK(e.mmio().len() == bytes);
    e.mmio().set_value(0xa1b2'c3d4'e5f6'0718);
    kvm::Exit echo = ArmGuest::run(v);
    REQUIRE(echo.reason() == ExitReason::Mmio);
    CHECK(echo.mmio().phys_addr() == kMmioBase + 0x100);
    std::uint64_t mask = bytes == 8 ? ~0ull : (1ull << (8 * bytes)) - 1;
    CHECK(echo.mmio().value() == (0xa1b2'c3d4'e5f6'0718 & mask));  // zero-extended
    offset += 8;
  }
  CHECK(ArmGuest::run(v).reason() == ExitReason::SystemEvent);
}

TEST_CASE("aarch64: the register list holds the core registers and each one reads") {
  ArmGuest g;
  kvm::Vcpu v = g.vcpu(0);
  std::vector<std::uint64_t> ids = v.reg_list();
  CHECK(ids.size() > 100);
  CHECK(std::find(ids.begin(), ids.end(), a64::kRegPc) != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), a64::reg_x(30)) != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), kvm::abi::consts::RegArmPsciVersion) != ids.end());
  // Every listed register up to 8 bytes reads back without error.
  std::size_t read = 0;
  for (std::uint64_t id : ids) {
    std::uint64_t bytes =
        1ull << ((id & kvm::abi::consts::RegSizeMask) >> kvm::abi::consts::RegSizeShift);
    if (bytes > 8) continue;
    std::uint64_t value = 0;
    v.get_one_reg(id, &value);
    ++read;
  }
  CHECK(read > 100);
  // PSCI 1.0 or later (major in the top half) on every kernel we test.
  CHECK((v.one_reg_u64(kvm::abi::consts::RegArmPsciVersion) >> 16) >= 1);
}

TEST_CASE("aarch64: a register id the vCPU does not have is an error naming it") {
  ArmGuest g;
  kvm::Vcpu v = g.vcpu(0);
  std::uint64_t bogus = a64::core_reg(0x4000), value = 0;
  REQUIRE_THROWS_AS(v.get_one_reg(bogus, &value), kvm::Error);
  try {
    v.get_one_reg(bogus, &value);
  } catch (const kvm::Error& e) {
    CHECK(std::string(e.what()).find("KVM_GET_ONE_REG") != std::string::npos);
  }
}

TEST_CASE("aarch64: running before KVM_ARM_VCPU_INIT fails with ENOEXEC") {
  ArmGuest g;
  kvm::Vcpu v = g.vm.create_vcpu(0);
  REQUIRE_THROWS_AS(v.run(), kvm::Error);
  try {
    v.run();
  } catch (const kvm::Error& e) {
    CHECK(e.code().value() == ENOEXEC);
  }
}

TEST_CASE("aarch64: a VM created with a larger IPA size takes slots up to that size") {
  kvm::System sys;
  const unsigned max_bits = sys.max_ipa_bits();
  if (max_bits <= 40) {
    std::fprintf(stderr, "SKIPPED: KVM_CAP_ARM_VM_IPA_SIZE is %u: only the default 40-bit IPA\n",
                 max_bits);
    return;
  }
  CHECK(sys.create_vm().phys_addr_bits() == 40);  // the default type
  kvm::Vm vm = sys.create_vm(kvm::VmType::arm_ipa_bits(max_bits));
  REQUIRE(vm.phys_addr_bits() == max_bits);
  CHECK(vm.type().ipa_bits() == max_bits);
  const std::uint64_t top = std::uint64_t{1} << max_bits;
  kvm::HostMapping m(0x2000);
  kvm::MemoryRegion r;
  r.slot = 1;
  r.size = 0x2000;
  r.host_addr = m.data();
  // Past the VM's IPA space: refused by the runtime, naming the width...
  r.guest_phys_addr = top - 0x1000;
  CHECK_THROWS_WITH(vm.set_user_memory_region(r),
                    Catch::EndsWith(std::to_string(max_bits) + "-bit physical address space)"));
  // ...and the last two pages below it, beyond the default 40 bits, taken by the kernel.
  r.guest_phys_addr = top - 0x2000;
  vm.set_user_memory_region(r);
  CHECK(vm.memory_regions().size() == 1);
}

// riscv64 guests on real KVM (run inside QEMU by tools/qemu/run.sh): core registers and CSRs
// through ONE_REG, MMIO of every size, SBI calls to a vendor extension (KVM_EXIT_RISCV_SBI,
// with the return values the VMM writes), SBI shutdown, the register list.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>

#include "rv_guest.h"

using namespace testing;
using kvm::ExitReason;
namespace rv = kvm::riscv64;

TEST_CASE("riscv64: SBI SRST shutdown ends the run with KVM_EXIT_SYSTEM_EVENT") {
  RvGuest g;
  kvm::Vcpu v = g.start([](Assembler& a) { sbi_shutdown(a); });
  kvm::Exit e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::SystemEvent);
  CHECK(e.system_event().type == kvm::abi::SystemEventType::Shutdown);
}

TEST_CASE("riscv64: core registers and CSRs through ONE_REG") {
  RvGuest g;
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.addi(Reg::a2, Reg::a0, 7);
    a.csrr(Reg::a3, rv::csr::kSscratch);
    a.li(Reg::t0, kMmioBase);
    a.store(8, Reg::a2, Reg::t0);
    a.store(8, Reg::a3, Reg::t0);
    sbi_shutdown(a);
  });
  CHECK(v.one_reg_u64(rv::kRegPc) == kRamBase);
  CHECK(v.one_reg_u64(rv::kRegMode) == kvm::abi::consts::RiscvModeS);
  CHECK(v.one_reg_u64(rv::kCsrSatp) == 0);  // paging off
  std::uint64_t a0 = 0x0123'4567'89ab'cdef, scratch = 0xfeed'f00d'cafe'beef;
  v.set_one_reg(rv::kRegA0, &a0);
  v.set_one_reg(rv::kCsrSscratch, &scratch);
  CHECK(v.one_reg_u64(rv::kRegA0) == a0);
  CHECK(v.one_reg_u64(rv::kCsrSscratch) == scratch);

  kvm::Exit e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().value() == a0 + 7);
  e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().value() == scratch);
  CHECK(RvGuest::run(v).reason() == ExitReason::SystemEvent);
}

TEST_CASE("riscv64: MMIO writes and reads of 1, 2, 4 and 8 bytes") {
  RvGuest g;
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.li(Reg::t0, kMmioBase);
    a.li(Reg::t1, 0x1122'3344'5566'7788);
    int offset = 0;
    for (unsigned bytes : {1u, 2u, 4u, 8u}) {
      a.store(bytes, Reg::t1, Reg::t0, offset);
      offset += 8;
    }
    offset = 0;
    for (unsigned bytes : {1u, 2u, 4u, 8u}) {
      a.load(bytes, Reg::t2, Reg::t0, offset);
      a.store(8, Reg::t2, Reg::t0, 0x100);
      offset += 8;
    }
    sbi_shutdown(a);
  });
  unsigned offset = 0;
  for (unsigned bytes : {1u, 2u, 4u, 8u}) {
    kvm::Exit e = RvGuest::run(v);
    REQUIRE(e.reason() == ExitReason::Mmio);
    CHECK(e.mmio().is_write());
    CHECK(e.mmio().phys_addr() == kMmioBase + offset);
    CHECK(e.mmio().len() == bytes);
    std::uint64_t mask = bytes == 8 ? ~0ull : (1ull << (8 * bytes)) - 1;
    CHECK(e.mmio().value() == (0x1122'3344'5566'7788 & mask));
    offset += 8;
  }
  for (unsigned bytes : {1u, 2u, 4u, 8u}) {
    kvm::Exit e = RvGuest::run(v);
    REQUIRE(e.reason() == ExitReason::Mmio);
    CHECK_FALSE(e.mmio().is_write());
    CHECK(e.mmio().len() == bytes);
    e.mmio().set_value(0xa1b2'c3d4'e5f6'0718);
    kvm::Exit echo = RvGuest::run(v);
    REQUIRE(echo.reason() == ExitReason::Mmio);
    CHECK(echo.mmio().phys_addr() == kMmioBase + 0x100);
    std::uint64_t mask = bytes == 8 ? ~0ull : (1ull << (8 * bytes)) - 1;
    CHECK(echo.mmio().value() == (0xa1b2'c3d4'e5f6'0718 & mask));  // lbu/lhu/lwu zero-extend
  }
  CHECK(RvGuest::run(v).reason() == ExitReason::SystemEvent);
}

TEST_CASE("riscv64: a vendor SBI extension exits to the VMM, whose return values the guest sees") {
  RvGuest g;
  constexpr std::uint64_t kEid = rv::kSbiVendorFirst + 0x4b56;  // any id in the vendor range
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.li(Reg::a0, 0xa0a0);
    a.li(Reg::a1, 0xa1a1);
    sbi_call(a, kEid, 3);
    // Report the SBI error (a0) and value (a1) the VMM returned.
    a.li(Reg::t0, kMmioBase);
    a.store(8, Reg::a0, Reg::t0);
    a.store(8, Reg::a1, Reg::t0, 8);
    sbi_shutdown(a);
  });
  kvm::Exit e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::RiscvSbi);
  auto& sbi = e.run().riscv_sbi;
  CHECK(sbi.extension_id == kEid);
  CHECK(sbi.function_id == 3);
  CHECK(sbi.args[0] == 0xa0a0);
  CHECK(sbi.args[1] == 0xa1a1);
  sbi.ret[0] = 0;  // SBI_SUCCESS
  sbi.ret[1] = 0x5eed'0000'0000'0001;

  e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().value() == 0);
  e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().value() == 0x5eed'0000'0000'0001);
  CHECK(RvGuest::run(v).reason() == ExitReason::SystemEvent);
}

TEST_CASE("riscv64: the register list holds the core registers and CSRs, and each one reads") {
  RvGuest g;
  kvm::Vcpu v = g.vm.create_vcpu(0);
  std::vector<std::uint64_t> ids;
  try {
    ids = v.reg_list();
  } catch (const kvm::Error& e) {
    // KVM_GET_REG_LIST came to riscv64 in Linux 6.6.
    if (e.code().value() == ENOTTY || e.code().value() == EINVAL) {
      std::fprintf(stderr, "SKIPPED: KVM_GET_REG_LIST: %s\n", e.what());
      WARN("this kernel has no KVM_GET_REG_LIST for riscv64: " << e.what());
      return;
    }
    throw;
  }
  CHECK(std::find(ids.begin(), ids.end(), rv::kRegPc) != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), rv::kRegMode) != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), rv::kCsrSstatus) != ids.end());
  std::size_t read = 0;
  for (std::uint64_t id : ids) {
    std::uint64_t bytes =
        1ull << ((id & kvm::abi::consts::RegSizeMask) >> kvm::abi::consts::RegSizeShift);
    if (bytes > 8) continue;
    std::uint64_t value = 0;
    v.get_one_reg(id, &value);
    ++read;
  }
  CHECK(read > 40);
}

TEST_CASE("riscv64: the ISA config register and the timer registers read through ONE_REG") {
  RvGuest g;
  kvm::Vcpu v = g.vm.create_vcpu(0);
  // KVM_REG_RISCV_CONFIG index 0 is the isa bitmap: I, M, A and H... as bits 'x' - 'a'.
  std::uint64_t isa = v.one_reg_u64(rv::reg_id(kvm::abi::consts::RegRiscvConfig, 0));
  CHECK((isa >> ('i' - 'a') & 1) == 1);
  CHECK((isa >> ('m' - 'a') & 1) == 1);
  CHECK((isa >> ('h' - 'a') & 1) == 0);  // the guest has no H of its own
  // KVM_REG_RISCV_TIMER index 0 is the timer frequency, index 1 the time.
  std::uint64_t freq = v.one_reg_u64(rv::reg_id(kvm::abi::consts::RegRiscvTimer, 0));
  CHECK(freq == 10'000'000);  // QEMU virt's 10 MHz timebase
  std::uint64_t t0 = v.one_reg_u64(rv::reg_id(kvm::abi::consts::RegRiscvTimer, 8));
  std::uint64_t t1 = v.one_reg_u64(rv::reg_id(kvm::abi::consts::RegRiscvTimer, 8));
  CHECK(t1 >= t0);
}

// riscv64's in-kernel AIA (APLIC + IMSIC), where the kernel has it: created, configured and
// initialised from the VMM, and serving the guest's APLIC accesses without an exit.
//
// KVM_DEV_TYPE_RISCV_AIA and its attributes came with Linux 6.5; the generated bindings (the
// newest headers) name them, and a kernel older than 6.5 reports the device absent.
#include <catch2/catch.hpp>

#include <cstdint>

#include "rv_guest.h"

using namespace testing;
using kvm::ExitReason;

namespace {

namespace c = kvm::abi::consts;
constexpr auto kDevTypeRiscvAia = kvm::abi::DeviceType::RiscvAia;
constexpr std::uint32_t kGrpConfig = c::DevRiscvAiaGrpConfig, kGrpAddr = c::DevRiscvAiaGrpAddr,
                        kGrpCtrl = c::DevRiscvAiaGrpCtrl;
constexpr std::uint64_t kConfigMode = c::DevRiscvAiaConfigMode,
                        kConfigIds = c::DevRiscvAiaConfigIds,
                        kConfigSrcs = c::DevRiscvAiaConfigSrcs;
constexpr std::uint64_t kAddrAplic = c::DevRiscvAiaAddrAplic, kCtrlInit = c::DevRiscvAiaCtrlInit;
constexpr std::uint64_t kAddrImsicFirst = c::DevRiscvAiaAddrAplic + 1;  // + vCPU index (IMSIC(i))
constexpr std::uint64_t kAplic = 0x0c000000, kImsic = 0x28000000;

}  // namespace

TEST_CASE("riscv64: the in-kernel AIA serves the guest's APLIC without exits") {
  RvGuest g;
  if (!g.vm.supports_device(kDevTypeRiscvAia)) {
    std::fprintf(stderr,
                 "SKIPPED: KVM_CREATE_DEVICE_TEST: this kernel has no RISC-V AIA device "
                 "(needs Linux 6.5+ and a host with Ssaia)\n");
    WARN("no KVM_DEV_TYPE_RISCV_AIA on this kernel or host");
    return;
  }
  kvm::Device aia = g.vm.create_device(kDevTypeRiscvAia);
  std::uint64_t mode = 0, ids = 0;
  aia.get_attr(kGrpConfig, kConfigMode, &mode);
  aia.get_attr(kGrpConfig, kConfigIds, &ids);
  CHECK(mode <= 2);  // emulated, hardware-accelerated or automatic
  CHECK(ids >= 63);  // IMSIC interrupt identities
  std::uint64_t srcs = 32;
  aia.set_attr(kGrpConfig, kConfigSrcs, &srcs);

  kvm::Vcpu v = g.start([](Assembler& a) {
    a.li(Reg::t0, kAplic);
    a.load(4, Reg::t1, Reg::t0);  // domaincfg: in the kernel, no exit
    a.li(Reg::t0, kMmioBase);
    a.store(8, Reg::t1, Reg::t0);
    sbi_shutdown(a);
  });
  std::uint64_t aplic = kAplic, imsic = kImsic;
  aia.set_attr(kGrpAddr, kAddrAplic, &aplic);
  aia.set_attr(kGrpAddr, kAddrImsicFirst + 0, &imsic);
  aia.set_attr(kGrpCtrl, kCtrlInit, nullptr);

  kvm::Exit e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kMmioBase);
  // domaincfg reads with bits 31:24 = 0x80 (the APLIC spec's fixed pattern).
  CHECK((e.mmio().value() >> 24) == 0x80);
  CHECK(RvGuest::run(v).reason() == ExitReason::SystemEvent);
}

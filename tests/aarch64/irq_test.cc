// arm64 with an in-kernel vGICv3: an irqfd interrupt the guest takes through its vector table,
// and a second vCPU brought up with PSCI CPU_ON.
#include <sys/eventfd.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <exception>
#include <future>

#include "arm_guest.h"

using namespace testing;
using kvm::ExitReason;
namespace a64 = kvm::aarch64;

namespace {

constexpr std::uint64_t kGicd = 0x08000000;  // distributor, 64 KiB
constexpr std::uint64_t kGicr = 0x080a0000;  // redistributors, 128 KiB per vCPU
constexpr std::uint32_t kSpi = 5;            // irqfd gsi 5 is SPI 5 = INTID 37
constexpr std::uint32_t kIntid = 32 + kSpi;

// A vGICv3 at kGicd/kGicr. Created before the vCPUs; init_vgic() after them.
kvm::Device create_vgic(ArmGuest& g) {
  kvm::Device gic = g.vm.create_device(kvm::abi::DeviceType::ArmVgicV3);
  std::uint64_t dist = kGicd, redist = kGicr;
  gic.set_attr(kvm::abi::consts::DevArmVgicGrpAddr, kvm::abi::consts::VgicV3AddrTypeDist, &dist);
  gic.set_attr(kvm::abi::consts::DevArmVgicGrpAddr, kvm::abi::consts::VgicV3AddrTypeRedist,
               &redist);
  return gic;
}

void init_vgic(const kvm::Device& gic) {
  gic.set_attr(kvm::abi::consts::DevArmVgicGrpCtrl, kvm::abi::consts::DevArmVgicCtrlInit, nullptr);
}

// Guest code: makes kIntid an enabled, edge-triggered group-1 SPI and opens the CPU interface.
void enable_spi(Assembler& a) {
  a.mov(x(1), kGicd);
  a.mov(x(2), 0x12);  // GICD_CTLR: ARE | EnableGrp1
  a.str(4, x(2), x(1), 0x0);
  a.mov(x(2), 1u << (kIntid % 32));
  a.str(4, x(2), x(1), 0x80 + 4 * (kIntid / 32));  // GICD_IGROUPR: group 1
  a.mov(x(2), 2u << (2 * (kIntid % 16)));
  a.str(4, x(2), x(1), 0xc00 + 4 * (kIntid / 16));  // GICD_ICFGR: edge
  a.mov(x(2), 1u << (kIntid % 32));
  a.str(4, x(2), x(1), 0x100 + 4 * (kIntid / 32));  // GICD_ISENABLER
  a.mov(x(2), 7);
  a.msr(a64::sysreg::kIccSreEl1, x(2));
  a.isb();
  a.mov(x(2), 0xff);
  a.msr(a64::sysreg::kIccPmrEl1, x(2));
  a.mov(x(2), 1);
  a.msr(a64::sysreg::kIccIgrpen1El1, x(2));
  a.isb();
}

}  // namespace

TEST_CASE("aarch64: an irqfd raises a vGICv3 SPI that the guest takes and acknowledges") {
  ArmGuest g;
  if (!g.vm.supports_device(kvm::abi::DeviceType::ArmVgicV3)) {
    std::fprintf(stderr, "SKIPPED: KVM_CREATE_DEVICE_TEST says this host has no vGICv3\n");
    WARN("no vGICv3 on this host");
    return;
  }
  kvm::Device gic = create_vgic(g);
  // Vector table at RAM + 0x800 (2 KiB aligned): the IRQ slot for "current EL, SP_ELx" is
  // at +0x280. The handler reports the acknowledged INTID, ends it and powers off.
  constexpr std::uint64_t kVectors = kRamBase + 0x800;
  g.load(
      [](Assembler& a) {
        a.align_to(0x280);
        a.mrs(x(10), a64::sysreg::kIccIar1El1);
        a.mov(x(11), kMmioBase);
        a.str(8, x(10), x(11), 0x10);
        a.msr(a64::sysreg::kIccEoir1El1, x(10));
        system_off(a);
      },
      0x800);
  std::uint64_t pc = g.load([&](Assembler& a) {
    a.mov(x(0), kVectors);
    a.msr(a64::sysreg::kVbarEl1, x(0));
    a.isb();
    enable_spi(a);
    a.mov(x(1), kMmioBase);
    a.str(4, x(1), x(1));  // "ready"
    a.daif_clear(2);       // unmask IRQs
    auto idle = a.new_label();
    a.bind(idle);
    a.wfi();
    a.b(idle);
  });
  kvm::Vcpu v = g.vcpu(0);
  v.set_one_reg(a64::kRegPc, &pc);
  init_vgic(gic);
  int efd = eventfd(0, EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  g.vm.irqfd(efd, kSpi);

  kvm::Exit e = ArmGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  REQUIRE(e.mmio().phys_addr() == kMmioBase);  // the guest is ready and about to wait
  std::uint64_t one = 1;
  REQUIRE(write(efd, &one, sizeof one) == sizeof one);
  e = ArmGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kMmioBase + 0x10);
  CHECK(e.mmio().value() == kIntid);
  CHECK(ArmGuest::run(v).reason() == ExitReason::SystemEvent);
  g.vm.irqfd_deassign(efd, kSpi);
  close(efd);
}

TEST_CASE("aarch64: PSCI CPU_ON starts a powered-off second vCPU at the given entry") {
  ArmGuest g;
  kvm::Device gic = create_vgic(g);  // SMP guests need the in-kernel GIC (MPIDR routing)
  constexpr std::uint64_t kContext = 0xc0ffee;
  std::uint64_t entry = g.load(
      [](Assembler& a) {
        a.mov(x(1), kMmioBase);
        a.str(8, x(0), x(1), 0x20);  // x0 holds the context id
        system_off(a);
      },
      0x1000);
  std::uint64_t pc = g.load([&](Assembler& a) {
    a.mov(x(0), a64::kPsciCpuOn64);
    a.mov(x(1), 1);  // target MPIDR: Aff0 = 1, vCPU 1
    a.mov(x(2), entry);
    a.mov(x(3), kContext);
    a.hvc(0);
    a.mov(x(1), kMmioBase);
    a.str(8, x(0), x(1), 0x18);  // the PSCI result
    auto idle = a.new_label();
    a.bind(idle);
    a.wfi();
    a.b(idle);
  });
  kvm::Vcpu v0 = g.vcpu(0);
  kvm::Vcpu v1 = g.vcpu(1, /*powered_off=*/true);
  v0.set_one_reg(a64::kRegPc, &pc);
  init_vgic(gic);
  CHECK(v1.mp_state() == kvm::abi::MpState::Stopped);

  // vCPU 1 waits inside KVM_RUN until it is powered on. Catch2 assertions are not
  // thread-safe, so its thread only records what it saw.
  struct Seen {
    ExitReason first, last;
    std::uint64_t addr = 0, value = 0;
  };
  auto second = std::async(std::launch::async, [&] {
    Seen s{};
    kvm::Exit e = v1.run();  // no retry: a kick (below) must end this thread
    if (e.interrupted()) return s;
    s.first = e.reason();
    if (s.first == ExitReason::Mmio) {
      s.addr = e.mmio().phys_addr();
      s.value = e.mmio().value();
    }
    s.last = ArmGuest::run(v1).reason();
    return s;
  });
  // If vCPU 0 fails before it powers vCPU 1 on, the kick lets the thread end.
  struct KickOnUnwind {
    kvm::Kicker k;
    ~KickOnUnwind() {
      if (std::uncaught_exceptions() > 0) k.kick();
    }
  } guard{v1.kicker()};
  kvm::Exit e = ArmGuest::run(v0);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kMmioBase + 0x18);
  CHECK(e.mmio().value() == 0);  // PSCI_SUCCESS
  Seen s = second.get();
  REQUIRE(s.first == ExitReason::Mmio);
  CHECK(s.addr == kMmioBase + 0x20);
  CHECK(s.value == kContext);
  CHECK(s.last == ExitReason::SystemEvent);
}

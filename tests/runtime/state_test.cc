// vCPU and VM state: round trips through the kernel, sync regs as the default fast path, and
// guests that observe what the VMM set (CPUID table, MSRs, registers).
#include <catch2/catch.hpp>

#include <cstring>

#include "guest.h"

using namespace testing;
using kvm::ExitReason;
namespace abi = kvm::abi;

TEST_CASE("regs and sregs: sync regs carry guest state without ioctls, both directions") {
  // The guest adds rbx to rax, reports rax, and halts; then reports rax again after the VMM
  // changed it through the synced copy.
  LongModeGuest g([](Assembler& a) {
    a.add(Reg::Rax, Reg::Rbx);
    a.out(Width::k32, 0x50);
    a.out(Width::k32, 0x51);
    a.hlt();
  });
  REQUIRE(g.vcpu.sync_regs_mask() != 0);  // the default where the host has KVM_CAP_SYNC_REGS
  auto regs = g.vcpu.regs();
  regs.rax = 40;
  regs.rbx = 2;
  g.vcpu.set_regs(regs);  // before the first run: an ioctl
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 42);
  // After an exit the synced copy equals what the ioctl reports.
  abi::kvm_regs via_ioctl{};
  g.vcpu.ioctl<abi::ioctl::GetRegs>(via_ioctl);
  abi::kvm_regs synced = g.vcpu.regs();
  CHECK(std::memcmp(&via_ioctl, &synced, sizeof synced) == 0);
  CHECK(synced.rax == 42);
  abi::kvm_sregs sregs_ioctl{};
  g.vcpu.ioctl<abi::ioctl::GetSregs>(sregs_ioctl);
  CHECK(g.vcpu.sregs().cr3 == sregs_ioctl.cr3);
  CHECK(g.vcpu.sregs().efer == sregs_ioctl.efer);
  // A change through set_regs() reaches the guest with the next run, with no ioctl.
  synced.rax = 0x1234;
  g.vcpu.set_regs(synced);
  CHECK((g.vcpu.run_struct().kvm_dirty_regs & abi::to_underlying(abi::SyncRegs::Regs)) != 0);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().port() == 0x51);
  CHECK(e.io().value() == 0x1234);
  CHECK(g.run().reason() == ExitReason::Hlt);
}

TEST_CASE("vCPU events: synced on request, both directions, and the same as the ioctl's") {
  GuestOptions o;
  o.vcpu.sync_events = true;
  LongModeGuest g(
      [](Assembler& a) {
        a.out(Width::k8, 0x50);
        a.out(Width::k8, 0x51);
        a.hlt();
      },
      o);
  REQUIRE_CAP(g.sys, abi::Cap::VcpuEvents);
  const auto events_bit = abi::to_underlying(abi::SyncRegs::Events);
  if ((g.sys.check_extension(abi::Cap::SyncRegs) & events_bit) == 0)
    KVM_TEST_SKIP("KVM_CAP_SYNC_REGS does not offer KVM_SYNC_X86_EVENTS here");
  REQUIRE((g.vcpu.sync_regs_mask() & events_bit) != 0);
  REQUIRE(g.run().reason() == ExitReason::Io);
  // After an exit the synced copy equals what the ioctl reports.
  abi::kvm_vcpu_events via_ioctl{};
  g.vcpu.ioctl<abi::ioctl::GetVcpuEvents>(via_ioctl);
  abi::kvm_vcpu_events synced = g.vcpu.vcpu_events();
  CHECK(std::memcmp(&via_ioctl, &synced, sizeof synced) == 0);
  CHECK(synced.nmi.masked == 0);
  // A change through set_vcpu_events() goes to KVM with the next run: mask NMIs (the guest
  // never executes IRET, so the mask stays) and read it back through the ioctl.
  synced.nmi.masked = 1;
  g.vcpu.set_vcpu_events(synced);
  CHECK((g.vcpu.run_struct().kvm_dirty_regs & events_bit) != 0);
  abi::kvm_vcpu_events before_run{};
  g.vcpu.ioctl<abi::ioctl::GetVcpuEvents>(before_run);
  CHECK(before_run.nmi.masked == 0);  // not yet: no ioctl was issued
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().port() == 0x51);
  g.vcpu.ioctl<abi::ioctl::GetVcpuEvents>(via_ioctl);
  CHECK(via_ioctl.nmi.masked == 1);
  CHECK(g.vcpu.vcpu_events().nmi.masked == 1);
  CHECK(g.run().reason() == ExitReason::Hlt);
}

TEST_CASE("regs without sync regs use the ioctls and give the same results") {
  GuestOptions o;
  o.vcpu.sync_regs = false;
  LongModeGuest g(
      [](Assembler& a) {
        a.add(Reg::Rax, Reg::Rbx);
        a.out(Width::k32, 0x50);
        a.hlt();
      },
      o);
  CHECK(g.vcpu.sync_regs_mask() == 0);
  auto regs = g.vcpu.regs();
  regs.rax = 5;
  regs.rbx = 6;
  g.vcpu.set_regs(regs);
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 11);
  CHECK(g.vcpu.regs().rax == 11);
}

TEST_CASE("FPU, debug registers, XCRs, XSAVE, events, MP state and LAPIC round trips") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  vm.create_irqchip();
  kvm::Vcpu v = vm.create_vcpu(0);

  auto fpu = v.fpu();
  fpu.fcw = 0x27f;
  fpu.xmm[3][0] = 0xab;
  v.set_fpu(fpu);
  auto fpu2 = v.fpu();
  CHECK(fpu2.fcw == 0x27f);
  CHECK(fpu2.xmm[3][0] == 0xab);

  auto dr = v.debugregs();
  dr.db[0] = 0x1000;
  dr.db[2] = 0x3000;
  v.set_debugregs(dr);
  CHECK(v.debugregs().db[0] == 0x1000);
  CHECK(v.debugregs().db[2] == 0x3000);

  auto xcrs = v.xcrs();
  REQUIRE(xcrs.nr_xcrs >= 1);
  CHECK((xcrs.xcrs[0].value & 1) == 1);  // x87 is always enabled in XCR0
  v.set_xcrs(xcrs);
  abi::kvm_xcrs bad = xcrs;
  bad.nr_xcrs = 99;
  CHECK_THROWS_WITH(v.set_xcrs(bad), "KVM_SET_XCRS: Invalid argument (nr_xcrs 99 > 16)");

  auto xs = v.xsave();
  v.set_xsave(xs);
  int xsave2 = vm.check_extension(abi::Cap::Xsave2);
  if (xsave2 > 0) {
    auto area = v.xsave2(static_cast<std::size_t>(xsave2));
    CHECK(area.size() * 4 >= static_cast<std::size_t>(xsave2));
    v.set_xsave2(area);
  }

  auto ev = v.vcpu_events();
  v.set_vcpu_events(ev);

  CHECK(v.mp_state() == abi::MpState::Runnable);
  v.set_mp_state(abi::MpState::Halted);
  CHECK(v.mp_state() == abi::MpState::Halted);
  v.set_mp_state(abi::MpState::Runnable);

  auto lapic = v.lapic();
  // The LAPIC ID register (offset 0x20) of vCPU 0 holds APIC ID 0 in bits 24..31.
  std::uint32_t id;
  std::memcpy(&id, lapic.regs + 0x20, 4);
  CHECK((id >> 24) == 0);
  v.set_lapic(lapic);
}

TEST_CASE("VM clock, irqchip and PIT state round trips") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::AdjustClock);
  kvm::Vm vm = sys.create_vm();
  vm.create_irqchip();
  vm.create_pit2();
  auto clk = vm.clock();
  abi::kvm_clock_data set{};
  set.clock = clk.clock + 1'000'000'000ull;  // one second ahead
  vm.set_clock(set);
  CHECK(vm.clock().clock >= set.clock);
  for (std::uint32_t chip : {0u, 1u, 2u}) {
    auto c = vm.irqchip(chip);
    CHECK(c.chip_id == chip);
    vm.set_irqchip(c);
  }
  auto pit = vm.pit2();
  vm.set_pit2(pit);
  CHECK_THROWS_WITH(vm.irqchip(7), Catch::Contains("KVM_GET_IRQCHIP: Invalid argument (chip 7)"));
}

TEST_CASE("MSRs: set and get on the vCPU, the guest reads what the VMM wrote") {
  constexpr std::uint32_t kKernelGsBase = 0xc0000102;
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rcx, kKernelGsBase);
    a.rdmsr();  // edx:eax
    a.out(Width::k32, 0x60);
    a.mov(Reg::Rax, Reg::Rdx);
    a.out(Width::k32, 0x61);
    a.hlt();
  });
  auto list = g.sys.msr_index_list();
  CHECK(std::find(list.begin(), list.end(), kKernelGsBase) != list.end());
  kvm::Msrs msrs = kvm::msrs_for({kKernelGsBase});
  msrs[0].data = 0x00007fff55667788ull;  // must be canonical
  CHECK(g.vcpu.set_msrs(msrs) == 1);
  kvm::Msrs back = kvm::msrs_for({kKernelGsBase});
  CHECK(g.vcpu.get_msrs(back) == 1);
  // A non-canonical address is refused: KVM stops at that entry and reports 0 processed.
  kvm::Msrs bad = kvm::msrs_for({kKernelGsBase});
  bad[0].data = 0x1122334455667788ull;
  CHECK(g.vcpu.set_msrs(bad) == 0);
  CHECK(back[0].data == 0x00007fff55667788ull);
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 0x55667788u);
  e = g.run();
  CHECK(e.io().value() == 0x00007fffu);
}

TEST_CASE("MSR feature list and feature MSRs on /dev/kvm") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::GetMsrFeatures);
  auto features = sys.msr_feature_index_list();
  REQUIRE_FALSE(features.empty());
  kvm::Msrs m(features.size());
  for (auto idx : features) {
    abi::kvm_msr_entry e{};
    e.index = idx;
    m.push_back(e);
  }
  CHECK(sys.get_msrs(m) >= 1);
}

TEST_CASE("CPUID: the guest sees the table given with set_cpuid2") {
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rax, 0x40000100);  // a leaf of our own
    a.mov(Reg::Rcx, 0);
    a.cpuid();
    a.out(Width::k32, 0x70);  // eax
    a.mov(Reg::Rax, Reg::Rbx);
    a.out(Width::k32, 0x71);  // ebx
    a.hlt();
  });
  kvm::Cpuid cpuid = g.sys.supported_cpuid();
  CHECK(cpuid.size() > 0);
  abi::kvm_cpuid_entry2 leaf{};
  leaf.function = 0x40000100;
  leaf.eax = 0x600dcafe;
  leaf.ebx = 0x12345678;
  cpuid.push_back(leaf);
  g.vcpu.set_cpuid2(cpuid);
  CHECK(g.vcpu.cpuid2().size() == cpuid.size());
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 0x600dcafe);
  e = g.run();
  CHECK(e.io().value() == 0x12345678);
}

TEST_CASE("emulated CPUID and oversized tables") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::ExtEmulCpuid);
  CHECK(sys.emulated_cpuid().size() > 0);
  kvm::Cpuid big;
  CHECK_THROWS_WITH(
      big.resize(257),
      "kvm::FlexBuffer: Argument list too long (257 entries > the kernel's limit of 256)");
  kvm::Msrs many;
  CHECK_THROWS_WITH(many.resize(1000), Catch::Contains("1000 entries > the kernel's limit of 255"));
}

TEST_CASE("guest-visible MSR exits with KVM_CAP_X86_USER_SPACE_MSR: RDMSR gets the VMM's value") {
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rcx, 0x1234);  // no such MSR
    a.rdmsr();
    a.out(Width::k32, 0x62);
    a.hlt();
  });
  REQUIRE_CAP(g.sys, abi::Cap::X86UserSpaceMsr);
  g.vm.enable_cap(abi::Cap::X86UserSpaceMsr,
                  abi::to_underlying(abi::MsrExitReason::Unknown | abi::MsrExitReason::Inval));
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::X86Rdmsr);
  CHECK(e.msr().index == 0x1234);
  e.msr().data = 0xabcdef;
  e.msr().error = 0;
  CHECK_THROWS_AS(e.io(), kvm::WrongExitError);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 0xabcdef);
}

TEST_CASE("translate, NMI, TSC frequency and stats fds") {
  LongModeGuest g([](Assembler& a) { a.hlt(); });
  auto t = g.vcpu.translate(0x10000);
  CHECK(t.valid == 1);
  CHECK(t.physical_address == 0x10000);
  CHECK(g.vcpu.tsc_khz() > 0);
  if (g.sys.check_extension(abi::Cap::BinaryStatsFd) > 0) {
    kvm::Fd vm_stats = g.vm.stats_fd();
    kvm::Fd vcpu_stats = g.vcpu.stats_fd();
    CHECK(vm_stats.valid());
    CHECK(vcpu_stats.valid());
  }
  g.vcpu.nmi();  // with no IDT the NMI shuts the guest down: what matters is the ioctl worked
}

TEST_CASE("SMI injection (KVM_CAP_X86_SMM)") {
  LongModeGuest g([](Assembler& a) { a.hlt(); });
  REQUIRE_CAP(g.sys, abi::Cap::X86Smm);
  g.vcpu.smi();
  auto ev = g.vcpu.vcpu_events();
  CHECK(ev.smi.pending == 1);
}

TEST_CASE("TSC frequency control (KVM_CAP_TSC_CONTROL)") {
  LongModeGuest g([](Assembler& a) { a.hlt(); });
  REQUIRE_CAP(g.sys, abi::Cap::TscControl);
  std::uint32_t khz = g.vcpu.tsc_khz();
  g.vcpu.set_tsc_khz(khz / 2);
  CHECK(g.vcpu.tsc_khz() == khz / 2);
}

// Less common features end to end: binary statistics, MSR filters, in-kernel devices and
// their attributes.
#include <catch2/catch.hpp>

#include "guest.h"

using namespace testing;
using kvm::ExitReason;
namespace abi = kvm::abi;

TEST_CASE("binary stats: VM and vCPU statistics decode and count the guest's exits") {
  LongModeGuest g([](Assembler& a) {
    for (int i = 0; i < 5; ++i) a.out(Width::k8, 0x10);
    a.hlt();
  });
  REQUIRE_CAP(g.sys, abi::Cap::BinaryStatsFd);
  kvm::Fd vcpu_fd = g.vcpu.stats_fd();
  kvm::Stats before = kvm::read_stats(vcpu_fd.get());
  CHECK(before.id.find("vcpu") != std::string::npos);
  // "exits" counts every exit (io_exits stays 0 on PVM, whose emulator handles the port
  // accesses: they show up as insn_emulation instead).
  const kvm::Stat* exits = before.find("exits");
  REQUIRE(exits != nullptr);
  REQUIRE(exits->values.size() == 1);
  CHECK(exits->type() == abi::StatsType::Cumulative);
  CHECK(exits->unit() == abi::StatsUnit::None);
  CHECK(exits->base() == abi::StatsBase::Pow10);
  CHECK(abi::to_string(exits->type()) == "KVM_STATS_TYPE_CUMULATIVE");
  std::uint64_t start = exits->values[0];
  std::uint64_t halts = before.find("halt_exits")->values[0];
  for (int i = 0; i < 5; ++i) REQUIRE(g.run().reason() == ExitReason::Io);
  REQUIRE(g.run().reason() == ExitReason::Hlt);
  kvm::Stats after = kvm::read_stats(vcpu_fd.get());
  CHECK(after.find("exits")->values[0] >= start + 6);
  CHECK(after.find("halt_exits")->values[0] == halts + 1);
  kvm::Fd vm_fd = g.vm.stats_fd();
  kvm::Stats vm = kvm::read_stats(vm_fd.get());
  CHECK(vm.id.find("kvm-") == 0);
  CHECK(vm.stats.size() > 3);
  CHECK_THROWS_WITH(kvm::read_stats(-1), "KVM stats fd: Bad file descriptor (reading the header)");
}

TEST_CASE("MSR filter: a denied read exits to the VMM with reason FILTER") {
  constexpr std::uint32_t kMsr = 0xc0000102;  // KERNEL_GS_BASE, normally handled in the kernel
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rcx, kMsr);
    a.rdmsr();
    a.out(Width::k32, 0x10);
    a.hlt();
  });
  REQUIRE_CAP(g.sys, abi::Cap::X86MsrFilter);
  REQUIRE_CAP(g.sys, abi::Cap::X86UserSpaceMsr);
  g.vm.enable_cap(abi::Cap::X86UserSpaceMsr, abi::to_underlying(abi::MsrExitReason::Filter));
  std::uint8_t deny = 0;  // one bit per MSR: 0 denies
  abi::kvm_msr_filter filter{};
  filter.flags = abi::to_underlying(abi::MsrFilterDefault::Allow);
  filter.ranges[0].flags = abi::to_underlying(abi::MsrFilterRangeFlags::Read);
  filter.ranges[0].nmsrs = 1;
  filter.ranges[0].base = kMsr;
  filter.ranges[0].bitmap = &deny;
  g.vm.set_msr_filter(filter);
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::X86Rdmsr);
  CHECK(e.msr().index == kMsr);
  CHECK(e.msr().reason == abi::to_underlying(abi::MsrExitReason::Filter));
  e.msr().data = 0x77;
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 0x77);
}

TEST_CASE("in-kernel devices: create, query attributes, errors for unknown types") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::DeviceCtrl);
  kvm::Vm vm = sys.create_vm();
  if (!vm.supports_device(abi::DeviceType::Vfio))
    KVM_TEST_SKIP("this host's KVM has no VFIO device");
  kvm::Device dev = vm.create_device(abi::DeviceType::Vfio);
  CHECK(dev.fd() >= 0);
  CHECK(dev.type() == abi::DeviceType::Vfio);
  // Group KVM_DEV_VFIO_GROUP (1), attribute KVM_DEV_VFIO_GROUP_ADD (1) exists; group 99 does not.
  CHECK(dev.has_attr(1, 1));
  CHECK_FALSE(dev.has_attr(99, 0));
  CHECK_FALSE(vm.supports_device(abi::DeviceType{0x7777}));
  CHECK_THROWS_WITH(
      vm.create_device(abi::DeviceType{0x7777}),
      Catch::StartsWith("KVM_CREATE_DEVICE: ") && Catch::EndsWith("(device type 30583)"));
}

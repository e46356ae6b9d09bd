// Gaps closed by comparison with rust-vmm's kvm-ioctls: limit getters, the checked MSR filter
// builder, ONE_REG with sized buffers, and create_pit2's own flag type; each on a real VM.
#include <catch2/catch.hpp>

#include <array>
#include <cstring>

#include "guest.h"

namespace abi = kvm::abi;
using kvm::ExitReason;
using testing::Assembler;
using testing::LongModeGuest;
using testing::Reg;
using testing::Width;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kvm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// KVM_X86_REG_MSR(index): a 64-bit ONE_REG id for an MSR.
constexpr std::uint64_t msr_reg(std::uint32_t index) {
  return abi::consts::RegX86 | abi::consts::RegSizeU64 |
         std::uint64_t{abi::consts::X86RegTypeMsr} << 32 | index;
}

template <class Handle, class Arg>
concept TakesPitArg = requires(const Handle& h, Arg a) {
  h.create_pit2(a);
};

}  // namespace

static_assert(TakesPitArg<kvm::Vm, kvm::PitConfig>);
static_assert(!TakesPitArg<kvm::Vm, abi::PitFlags>, "kvm_pit_state2's flags are not PIT config");

TEST_CASE("limits: the VM's getters give the host's answers, and create_vcpu obeys them") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  CHECK(vm.max_vcpus() == sys.check_extension(abi::Cap::MaxVcpus));
  const int id_cap = sys.check_extension(abi::Cap::MaxVcpuId);
  CHECK(vm.max_vcpu_id() == (id_cap > 0 ? id_cap : vm.max_vcpus()));
  CHECK(vm.nr_memslots() == sys.check_extension(abi::Cap::NrMemslots));
  CHECK(vm.max_vcpus() > 0);
  CHECK(vm.nr_memslots() > 0);
  const auto bad_id = static_cast<unsigned>(vm.max_vcpu_id());
  CHECK_THAT(error_of([&] { vm.create_vcpu(bad_id); }),
             Catch::Contains(">= KVM_CAP_MAX_VCPU_ID " + std::to_string(bad_id)));
}

TEST_CASE("PIT: create_pit2 takes kvm_pit_config's KVM_PIT_SPEAKER_DUMMY, which KVM then serves") {
  auto program = [](Assembler& a) {
    a.in(Width::k8, 0x61);  // the PC speaker port
    a.out(Width::k8, 0x80);
    a.hlt();
  };
  auto first_port = [&](kvm::PitConfig config) {
    LongModeGuest g(program, testing::GuestOptions{.irqchip = true});
    g.vm.create_pit2(config);
    kvm::Exit e = g.run();
    REQUIRE(e.reason() == ExitReason::Io);
    return e.io().port();
  };
  CHECK(first_port(kvm::PitConfig::None) == 0x61);          // the VMM's to answer
  CHECK(first_port(kvm::PitConfig::SpeakerDummy) == 0x80);  // KVM answered port 0x61
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  vm.create_irqchip();
  CHECK(error_of([&] { vm.create_pit2(static_cast<kvm::PitConfig>(6)); }) ==
        "KVM_CREATE_PIT2: Invalid argument (unknown kvm_pit_config flags 0x6; KVM knows "
        "KVM_PIT_SPEAKER_DUMMY)");
}

TEST_CASE("MSR filter builder: checks ranges, bitmaps and flags; a denied read exits") {
  using Access = kvm::MsrFilter::Access;
  kvm::MsrFilter bad;
  const std::uint8_t one = 0;
  CHECK(error_of([&] {
          bad.add_range(Access::Read, 0x10, 9, {&one, 1});
        }) ==
        "KVM_X86_SET_MSR_FILTER: Invalid argument (range 0 (MSRs 0x10 + 9): bitmap of 1 bytes, "
        "needs 2)");
  CHECK_THAT(error_of([&] { bad.deny(Access::Read, 0, 0); }), Catch::EndsWith(": no MSRs)"));
  CHECK_THAT(error_of([&] { bad.deny(Access::Read, 0xffffffff, 2); }),
             Catch::Contains("ends past MSR 0xffffffff"));
  CHECK_THAT(error_of([&] { bad.deny(static_cast<Access>(4), 0x10); }),
             Catch::Contains("access flags 0x4 are not KVM_MSR_FILTER_READ and/or"));
  CHECK_THAT(error_of([&] { bad.deny(Access::Write, 0, 1536 * 8 + 1); }),
             Catch::Contains("exceeds KVM_MSR_FILTER_MAX_BITMAP_SIZE 1536"));
  CHECK_THAT(error_of([] { kvm::MsrFilter(static_cast<abi::MsrFilterDefault>(2)); }),
             Catch::Contains("filter flags 0x2 are not KVM_MSR_FILTER_DEFAULT_ALLOW"));
  for (std::uint32_t i = 0; i < 16; ++i) bad.deny(Access::Read, 0x100 + i);
  CHECK_THAT(error_of([&] { bad.deny(Access::Read, 0x200); }),
             Catch::Contains("range 16 (MSRs 0x200 + 1): more than KVM_MSR_FILTER_MAX_RANGES 16"));
  CHECK(bad.ranges() == 16);

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
  kvm::MsrFilter filter;
  filter.allow(Access::Read | Access::Write, 0x10).deny(Access::Read, kMsr);
  g.vm.set_msr_filter(filter);
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::X86Rdmsr);
  CHECK(e.msr().index == kMsr);
  e.msr().data = 0x99;
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 0x99);
}

TEST_CASE(
    "ONE_REG: a buffer of the id's KVM_REG_SIZE round-trips an MSR; another size is refused") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::OneReg);
  kvm::Vm vm = sys.create_vm();
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  constexpr std::uint32_t kSysenterEsp = 0x175;  // an MSR any x86 vCPU keeps
  const std::uint64_t id = msr_reg(kSysenterEsp);
  CHECK(kvm::one_reg_size(id) == 8);
  const std::uint64_t value = 0xffff800012345000;
  vcpu.set_one_reg(id, {reinterpret_cast<const std::uint8_t*>(&value), sizeof value});
  kvm::Msrs msrs = kvm::msrs_for({kSysenterEsp});
  REQUIRE(vcpu.get_msrs(msrs) == 1);
  CHECK(msrs[0].data == value);  // the register ioctl and KVM_GET_MSRS agree
  std::array<std::uint8_t, 8> back{};
  vcpu.get_one_reg(id, back);
  std::uint64_t read;
  std::memcpy(&read, back.data(), 8);
  CHECK(read == value);

  std::array<std::uint8_t, 4> small{};
  CHECK(error_of([&] { vcpu.get_one_reg(id, small); }) ==
        "KVM_GET_ONE_REG: Invalid argument (register id 0x2030000200000175 holds 8 bytes (its "
        "KVM_REG_SIZE), not 4)");
  std::array<std::uint8_t, 16> large{};
  CHECK_THAT(error_of([&] { vcpu.set_one_reg(id, large); }),
             Catch::Contains("holds 8 bytes (its KVM_REG_SIZE), not 16"));
}

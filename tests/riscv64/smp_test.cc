// riscv64 SMP: a second vCPU held stopped with KVM_SET_MP_STATE and started by the first
// with SBI HSM HART_START, which hands it its hart id and an opaque value.
#include <catch2/catch.hpp>

#include <cstdint>
#include <exception>
#include <future>

#include "rv_guest.h"

using namespace testing;
using kvm::ExitReason;

namespace {

constexpr std::uint64_t kSbiExtHsm = 0x48534d;  // "HSM"
constexpr std::uint64_t kHsmHartStart = 0;

}  // namespace

TEST_CASE("riscv64: SBI HSM HART_START runs a stopped second vCPU at the given address") {
  RvGuest g;
  constexpr std::uint64_t kOpaque = 0x0bad'cafe;
  std::uint64_t entry = g.load(
      [](Assembler& a) {
        a.li(Reg::t0, kMmioBase);
        a.store(8, Reg::a0, Reg::t0, 0x20);  // a0: its hart id
        a.store(8, Reg::a1, Reg::t0, 0x28);  // a1: the opaque value
        sbi_shutdown(a);
      },
      0x1000);
  kvm::Vcpu v0 = g.start([&](Assembler& a) {
    a.li(Reg::a0, 1);  // hart id of vCPU 1
    a.li(Reg::a1, entry);
    a.li(Reg::a2, kOpaque);
    sbi_call(a, kSbiExtHsm, kHsmHartStart);
    a.li(Reg::t0, kMmioBase);
    a.store(8, Reg::a0, Reg::t0, 0x18);  // the SBI error code
    auto idle = a.new_label();
    a.bind(idle);
    a.wfi();
    a.j(idle);
  });
  kvm::Vcpu v1 = g.vm.create_vcpu(1);
  v1.set_mp_state(kvm::abi::MpState::Stopped);
  CHECK(v1.mp_state() == kvm::abi::MpState::Stopped);

  // vCPU 1 waits inside KVM_RUN until it is started. Catch2 assertions are not thread-safe,
  // so its thread only records what it saw.
  struct Seen {
    ExitReason first{}, second{}, last{};
    std::uint64_t hart = 0, opaque = 0;
  };
  auto second = std::async(std::launch::async, [&] {
    Seen s;
    kvm::Exit e = v1.run();  // no retry: a kick (below) must end this thread
    if (e.interrupted()) return s;
    s.first = e.reason();
    if (s.first != ExitReason::Mmio) return s;
    s.hart = e.mmio().value();
    e = RvGuest::run(v1);
    s.second = e.reason();
    if (s.second != ExitReason::Mmio) return s;
    s.opaque = e.mmio().value();
    s.last = RvGuest::run(v1).reason();
    return s;
  });
  struct KickOnUnwind {
    kvm::Kicker k;
    ~KickOnUnwind() {
      if (std::uncaught_exceptions() > 0) k.kick();
    }
  } guard{v1.kicker()};

  kvm::Exit e = RvGuest::run(v0);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kMmioBase + 0x18);
  CHECK(e.mmio().value() == 0);  // SBI_SUCCESS
  Seen s = second.get();
  REQUIRE(s.first == ExitReason::Mmio);
  CHECK(s.hart == 1);
  REQUIRE(s.second == ExitReason::Mmio);
  CHECK(s.opaque == kOpaque);
  CHECK(s.last == ExitReason::SystemEvent);
}

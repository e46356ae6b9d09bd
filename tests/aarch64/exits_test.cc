// arm64 exits that need no interrupt controller: WFI, a kick on a spinning guest, run_for's
// deadline, ioeventfd (a write that never exits) and dirty-page tracking.
#include <sys/eventfd.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <thread>

#include "arm_guest.h"
#include "delayed_kick.h"

using namespace testing;
using namespace std::chrono_literals;
using kvm::ExitReason;

TEST_CASE("aarch64: WFI with nothing pending blocks in the kernel until a kick, then goes on") {
  ArmGuest g;
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.wfi();
    a.mov(x(1), kMmioBase);
    a.str(4, x(1), x(1));
    system_off(a);
  });
  auto t0 = std::chrono::steady_clock::now();
  {
    DelayedKick kick(v, 100ms);
    kvm::Exit e = v.run();
    CHECK(e.interrupted());  // WFI did not exit to userspace by itself
  }
  CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);
  kvm::Exit e = ArmGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);  // resumed after the WFI
  CHECK(e.mmio().phys_addr() == kMmioBase);
}

TEST_CASE("aarch64: a kick stops a spinning guest, and run_for() stops it at its deadline") {
  ArmGuest g;
  kvm::Vcpu v = g.start([](Assembler& a) {
    auto spin = a.new_label();
    a.bind(spin);
    a.add(x(5), x(5), 1);
    a.b(spin);
  });
  {
    DelayedKick kick(v, 50ms);
    kvm::Exit e = v.run();
    CHECK(e.interrupted());
    CHECK_FALSE(e.timed_out());
  }
  std::uint64_t count = v.one_reg_u64(kvm::aarch64::reg_x(5));
  CHECK(count > 0);  // it did run
  kvm::Exit e = v.run_for(30ms);
  CHECK(e.timed_out());
  CHECK(v.one_reg_u64(kvm::aarch64::reg_x(5)) > count);
}

TEST_CASE("aarch64: an ioeventfd write signals the eventfd without an exit") {
  ArmGuest g;
  REQUIRE(g.sys.check_extension(kvm::abi::Cap::Ioeventfd) > 0);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  REQUIRE(efd >= 0);
  g.vm.ioeventfd({.addr = kMmioBase + 0x40, .length = 4, .eventfd = efd});
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.mov(x(1), kMmioBase);
    a.mov(x(2), 7);
    a.str(4, x(2), x(1), 0x40);  // to the eventfd
    a.str(4, x(2), x(1), 0x40);
    a.str(4, x(2), x(1), 0x80);  // an ordinary MMIO exit
    system_off(a);
  });
  kvm::Exit e = ArmGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kMmioBase + 0x80);
  std::uint64_t signalled = 0;
  REQUIRE(read(efd, &signalled, sizeof signalled) == sizeof signalled);
  CHECK(signalled == 2);
  g.vm.ioeventfd_deassign({.addr = kMmioBase + 0x40, .length = 4, .eventfd = efd});
  close(efd);
  CHECK(ArmGuest::run(v).reason() == ExitReason::SystemEvent);
}

TEST_CASE("aarch64: the dirty log holds exactly the pages the guest wrote") {
  ArmGuest g;
  constexpr std::uint64_t kData = 0x50000000, kPages = 64;
  g.mem.add(g.vm, kData, kPages * 4096, kvm::abi::MemoryFlags::LogDirtyPages);
  std::uint32_t slot = g.mem.regions().back().slot;
  kvm::Vcpu v = g.start([&](Assembler& a) {
    a.mov(x(1), kData);
    a.mov(x(2), 0xd1);
    for (std::uint32_t page : {3u, 7u, 63u}) {
      a.mov(x(3), kData + page * 4096 + 8);
      a.str(8, x(2), x(3));
    }
    system_off(a);
  });
  CHECK(ArmGuest::run(v).reason() == ExitReason::SystemEvent);
  std::vector<std::uint64_t> log = g.vm.dirty_log(slot);
  REQUIRE(log.size() == 1);
  CHECK(log[0] == ((1ull << 3) | (1ull << 7) | (1ull << 63)));
  CHECK(g.ram.size() == kRamSize);
  // Reading cleared it (no manual protect): nothing new is dirty.
  CHECK(g.vm.dirty_log(slot)[0] == 0);
}

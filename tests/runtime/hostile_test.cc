// A hostile guest cannot turn the VMM against its host: string IO with huge counts, MMIO at
// the edges of and between memory slots, writes into its own page tables, triple faults and
// infinite loops. For each, the VMM built on the runtime survives, sees a well-formed exit
// (or an interruption) and can go on — the test process is the host here.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "guest.h"

using namespace testing;
using namespace std::chrono_literals;
using kvm::ExitReason;
using kvm::x86::mem;
namespace abi = kvm::abi;

namespace {

// Every byte of an IO exit's data must lie in the vCPU mapping; touching them all lets ASan
// and the checks in Exit::io() catch anything else.
void check_io_in_bounds(const kvm::Exit& e, const kvm::Vcpu& v) {
  kvm::IoExit io = e.io();
  auto* base = reinterpret_cast<const std::uint8_t*>(&v.run_struct());
  REQUIRE(io.data().data() >= base);
  REQUIRE(io.data().data() + io.data().size() <= base + v.mmap_size());
  unsigned sum = 0;
  for (std::uint8_t b : io.data()) sum += b;
  (void)sum;
}

// Runs a guest in a background-kicked loop: at most `max_exits` exits or `budget` of time.
struct Watchdog {
  kvm::Kicker kicker;
  std::thread t;
  std::atomic<bool> done{false};
  Watchdog(const kvm::Vcpu& v, std::chrono::milliseconds budget) : kicker(v.kicker()) {
    t = std::thread([this, budget] {
      auto end = std::chrono::steady_clock::now() + budget;
      while (!done && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
      if (!done) kicker.kick();
    });
  }
  ~Watchdog() {
    done = true;
    t.join();
  }
};

}  // namespace

TEST_CASE("hostile: rep insb/outsb with a huge count stays inside the PIO page") {
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rdi, 0x100000);
    a.mov(Reg::Rcx, 0x7fffffff);  // would read far past guest RAM
    a.mov(Reg::Rdx, 0x70);
    a.rep_insb();
    a.hlt();
  });
  Watchdog w(g.vcpu, 5s);
  std::uint64_t bytes = 0;
  int exits = 0;
  for (; exits < 200; ++exits) {
    kvm::Exit e = g.vcpu.run();
    if (e.interrupted()) break;
    if (e.reason() != ExitReason::Io) {
      INFO("exit " << e.name());
      CHECK((e.reason() == ExitReason::Mmio || e.reason() == ExitReason::Shutdown ||
             e.reason() == ExitReason::InternalError));
      break;
    }
    check_io_in_bounds(e, g.vcpu);
    CHECK(e.io().data().size() <= 4096);
    bytes += e.io().data().size();
  }
  CHECK(exits > 0);
  CHECK(bytes > 0);
}

TEST_CASE("hostile: rep outsb from unmapped guest memory") {
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rsi, 0x30000000);  // inside the identity map, outside every slot
    a.mov(Reg::Rcx, 0x100000);
    a.mov(Reg::Rdx, 0x71);
    a.rep_outsb();
    a.hlt();
  });
  Watchdog w(g.vcpu, 5s);
  for (int i = 0; i < 100; ++i) {
    kvm::Exit e = g.vcpu.run();
    if (e.interrupted()) break;
    if (e.reason() == ExitReason::Io) {
      check_io_in_bounds(e, g.vcpu);
    } else if (e.reason() == ExitReason::Mmio) {
      CHECK(e.mmio().len() <= 8);
      e.mmio().set_value(0xff);
    } else {
      break;
    }
  }
  SUCCEED("the VMM kept control");
}

TEST_CASE("hostile: MMIO at the edges of and between memory slots") {
  GuestOptions o;
  o.memory = 2 << 20;  // RAM [0, 2 MiB); a gap page; a second slot after it
  LongModeGuest g(
      [](Assembler& a) {
        a.mov(Reg::Rax, 0x1122334455667788ull);
        a.mov(Reg::Rbx, 0x200000 - 4);
        a.store(Width::k64, mem(Reg::Rbx, 0), Reg::Rax);  // straddles the end of RAM
        a.mov(Reg::Rbx, 0x200800);
        a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);  // in the gap
        a.mov(Reg::Rbx, 0x201000);
        a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);  // first byte of the second slot: RAM
        a.out(Width::k8, 0x10);
        a.hlt();
      },
      o);
  g.mem.add(g.vm, 0x201000, 0x1000);
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == 0x200000);  // only the part past the slot exits
  CHECK(e.mmio().len() == 4);
  CHECK(e.mmio().value() == 0x11223344);
  CHECK(g.mem.read_obj<std::uint32_t>(0x200000 - 4) == 0x55667788u);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == 0x200800);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(g.mem.read_obj<std::uint32_t>(0x201000) == 0x55667788u);
  // The host side refuses what crosses a region end, whatever the guest did.
  CHECK_THROWS_AS(g.mem.span(0x200000 - 4, 8), kvm::Error);
  CHECK_THROWS_AS(g.mem.span(0x200800, 1), kvm::Error);
}

TEST_CASE(
    "hostile: a guest that destroys its page tables, then triple-faults; the VMM recovers it") {
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rbx, 0x6000);  // the PML4
    a.xor_(Reg::Rax, Reg::Rax);
    a.store(Width::k64, mem(Reg::Rbx, 0), Reg::Rax);
    a.mov(Reg::Rax, Reg::Rax);  // the next fetch needs the tables it just erased
    a.hlt();
  });
  // The vCPU caches translations; flushing happens at the latest on the fault path. Either the
  // guest halts (stale TLB) or it shuts down: both are reported, neither harms the host.
  kvm::Exit e = g.run();
  INFO(e.name());
  CHECK((e.reason() == ExitReason::Shutdown || e.reason() == ExitReason::Hlt ||
         e.reason() == ExitReason::InternalError));
  // Recovery: rebuild the tables and registers from the host and run a fresh program.
  kvm::x86::write_long_mode_tables(g.ram, 0, g.layout);
  Assembler a;
  a.out(Width::k8, 0x42);
  a.hlt();
  kvm::x86::write_bytes(g.ram, 0, g.layout.code, a.finish(), "code");
  kvm::x86::start_in_long_mode(g.vcpu, g.layout);
  auto ev = g.vcpu.vcpu_events();
  ev.exception.injected = 0;
  ev.exception.pending = 0;
  g.vcpu.set_vcpu_events(ev);
  g.vcpu.set_mp_state(abi::MpState::Runnable);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().port() == 0x42);
}

TEST_CASE("hostile: an undefined instruction with no IDT triple-faults into KVM_EXIT_SHUTDOWN") {
  LongModeGuest g([](Assembler& a) { a.ud2(); });
  kvm::Exit e = g.run();
  CHECK(e.reason() == ExitReason::Shutdown);
  CHECK_THROWS_AS(e.io(), kvm::WrongExitError);
}

TEST_CASE("hostile: an infinite loop is stopped by the VMM's watchdog") {
  LongModeGuest g([](Assembler& a) {
    auto top = a.new_label();
    a.bind(top);
    a.jmp(top);
  });
  auto t0 = std::chrono::steady_clock::now();
  Watchdog w(g.vcpu, 100ms);
  kvm::Exit e = g.vcpu.run();
  CHECK(e.interrupted());
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
}

// Real guests on /dev/kvm exercising the exits a VMM handles most: port IO of every size,
// string IO, MMIO reads and writes, HLT, and real mode.
#include <catch2/catch.hpp>

#include <cstring>

#include "guest.h"

using namespace testing;
using kvm::ExitReason;
using kvm::x86::mem;

TEST_CASE("64-bit guest: out of 8, 16 and 32 bits through imm8 and dx ports") {
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rax, 0x11);
    a.out(Width::k8, 0x10);
    a.mov(Reg::Rax, 0x2233);
    a.out(Width::k16, 0x12);
    a.mov(Reg::Rax, 0x44556677);
    a.mov(Reg::Rdx, 0x3f8);
    a.out_dx(Width::k32);
    a.hlt();
  });
  struct Want {
    std::uint16_t port;
    std::uint8_t size;
    std::uint32_t value;
  };
  for (Want w : {Want{0x10, 1, 0x11}, Want{0x12, 2, 0x2233}, Want{0x3f8, 4, 0x44556677}}) {
    kvm::Exit e = g.run();
    REQUIRE(e.reason() == ExitReason::Io);
    kvm::IoExit io = e.io();
    CHECK(io.is_out());
    CHECK(io.port() == w.port);
    CHECK(io.size() == w.size);
    CHECK(io.count() == 1);
    CHECK(io.value() == w.value);
    CHECK(io.data().size() == w.size);
  }
  CHECK(g.run().reason() == ExitReason::Hlt);
}

TEST_CASE("64-bit guest: in of each size receives what the VMM supplies") {
  // The guest reads 8, 16 and 32 bits and echoes each value back with out.
  LongModeGuest g([](Assembler& a) {
    for (Width w : {Width::k8, Width::k16, Width::k32}) {
      a.in(w, 0x20);
      a.out(w, 0x21);
    }
    a.hlt();
  });
  for (std::uint32_t value : {0xabu, 0xbeefu, 0xcafef00du}) {
    kvm::Exit in = g.run();
    REQUIRE(in.reason() == ExitReason::Io);
    REQUIRE(in.io().is_in());
    CHECK(in.io().port() == 0x20);
    in.io().set_value(value);
    kvm::Exit out = g.run();
    REQUIRE(out.reason() == ExitReason::Io);
    CHECK(out.io().port() == 0x21);
    CHECK(out.io().value() == value);
  }
  CHECK(g.run().reason() == ExitReason::Hlt);
}

TEST_CASE("64-bit guest: rep outsb and rep insb move whole buffers") {
  static const char kMsg[] = "string io";
  LongModeGuest g([](Assembler& a) {
    // rep outsb from 0x20000, then rep insb into 0x21000, then echo what arrived.
    a.mov(Reg::Rsi, 0x20000);
    a.mov(Reg::Rcx, sizeof(kMsg) - 1);
    a.mov(Reg::Rdx, 0x30);
    a.rep_outsb();
    a.mov(Reg::Rdi, 0x21000);
    a.mov(Reg::Rcx, 4);
    a.mov(Reg::Rdx, 0x31);
    a.rep_insb();
    a.mov(Reg::Rsi, 0x21000);
    a.mov(Reg::Rcx, 4);
    a.mov(Reg::Rdx, 0x32);
    a.rep_outsb();
    a.hlt();
  });
  g.mem.write(0x20000, {reinterpret_cast<const std::uint8_t*>(kMsg), sizeof(kMsg) - 1});
  std::string out;
  kvm::Exit e = g.run();
  // KVM may split a rep outs into several exits; collect until the port changes.
  while (e.reason() == ExitReason::Io && e.io().port() == 0x30) {
    for (std::uint8_t b : e.io().data()) out += static_cast<char>(b);
    e = g.run();
  }
  CHECK(out == "string io");
  std::size_t got = 0;
  while (e.reason() == ExitReason::Io && e.io().port() == 0x31) {
    REQUIRE(e.io().is_in());
    for (std::uint8_t& b : e.io().data()) b = static_cast<std::uint8_t>('A' + got++);
    e = g.run();
  }
  CHECK(got == 4);
  std::string echo;
  while (e.reason() == ExitReason::Io && e.io().port() == 0x32) {
    for (std::uint8_t b : e.io().data()) echo += static_cast<char>(b);
    e = g.run();
  }
  CHECK(echo == "ABCD");
  CHECK(e.reason() == ExitReason::Hlt);
}

TEST_CASE("64-bit guest: MMIO writes and reads outside every slot") {
  constexpr std::uint64_t kMmio = 0x10000000;  // inside the identity map, outside every slot
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rbx, kMmio);
    a.mov(Reg::Rax, 0x1122334455667788ull);
    a.store(Width::k64, mem(Reg::Rbx, 8), Reg::Rax);
    a.store(Width::k8, mem(Reg::Rbx, 1), Reg::Rax);
    a.load(Width::k32, Reg::Rcx, mem(Reg::Rbx, 0x10));
    a.mov(Reg::Rax, Reg::Rcx);
    a.out(Width::k32, 0x40);
    a.hlt();
  });
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().is_write());
  CHECK(e.mmio().phys_addr() == kMmio + 8);
  CHECK(e.mmio().len() == 8);
  CHECK(e.mmio().value() == 0x1122334455667788ull);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().len() == 1);
  CHECK(e.mmio().value() == 0x88);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK_FALSE(e.mmio().is_write());
  CHECK(e.mmio().phys_addr() == kMmio + 0x10);
  CHECK(e.mmio().len() == 4);
  e.mmio().set_value(0xfeedface);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().value() == 0xfeedface);
  CHECK(g.run().reason() == ExitReason::Hlt);
}

// The 32-bit PCI hole is where VMMs put devices; with a map of only 1 GiB an access there was
// a page fault and, without an IDT, a triple fault: KVM_EXIT_SHUTDOWN and nothing else.
TEST_CASE("64-bit guest: the default layout maps the 32-bit MMIO hole, so devices there exit") {
  kvm::x86::GuestLayout defaults;
  CHECK(defaults.mapped_size >= 0x100000000ull);
  for (std::uint64_t device : {0xc0000000ull, 0xd0000000ull, 0xfec00000ull, 0xffffe000ull}) {
    LongModeGuest g([device](Assembler& a) {
      a.mov(Reg::Rbx, device);
      a.mov(Reg::Rax, 0x5a);
      a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);
      a.hlt();
    });
    INFO("device at " << std::hex << device);
    kvm::Exit e = g.run();
    REQUIRE(e.reason() == ExitReason::Mmio);
    CHECK(e.mmio().is_write());
    CHECK(e.mmio().phys_addr() == device);
    CHECK(e.mmio().value() == 0x5a);
    CHECK(g.run().reason() == ExitReason::Hlt);
  }
}

TEST_CASE("real-mode guest: out and in of 8, 16 and 32 bits, then hlt") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemory mem;
  auto ram = mem.add(vm, 0, 1 << 20);
  Assembler a(kvm::x86::Mode::k16);
  a.mov(Width::k16, Reg::Rdx, 0x80);
  a.mov(Width::k8, Reg::Rax, 0x5a);
  a.out_dx(Width::k8);
  a.mov(Width::k16, Reg::Rax, 0x1234);
  a.out_dx(Width::k16);
  a.mov(Width::k32, Reg::Rax, 0x89abcdef);
  a.out_dx(Width::k32);
  // in of each size through dx, each echoed back on port 0x81
  for (Width w : {Width::k8, Width::k16, Width::k32}) {
    a.mov(Width::k16, Reg::Rdx, 0x80);
    a.in_dx(w);
    a.mov(Width::k16, Reg::Rdx, 0x81);
    a.out_dx(w);
  }
  a.hlt();
  auto code = a.finish();
  std::memcpy(ram.data() + 0x7c00, code.data(), code.size());
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  auto sregs = vcpu.sregs();
  kvm::x86::setup_real_mode_sregs(sregs, 0);
  vcpu.set_sregs(sregs);
  kvm::abi::kvm_regs regs{};
  kvm::x86::setup_regs(regs, 0x7c00, 0x7000);
  vcpu.set_regs(regs);
  for (auto [size, value] :
       {std::pair{1, 0x5au}, std::pair{2, 0x1234u}, std::pair{4, 0x89abcdefu}}) {
    kvm::Exit e = vcpu.run();
    REQUIRE(e.reason() == ExitReason::Io);
    CHECK(e.io().port() == 0x80);
    CHECK(e.io().size() == size);
    CHECK(e.io().value() == value);
  }
  for (auto [size, value] :
       {std::pair{1, 0xa5u}, std::pair{2, 0xbeefu}, std::pair{4, 0x01020304u}}) {
    kvm::Exit in = vcpu.run();
    REQUIRE(in.reason() == ExitReason::Io);
    REQUIRE(in.io().is_in());
    CHECK(in.io().size() == size);
    in.io().set_value(value);
    kvm::Exit out = vcpu.run();
    REQUIRE(out.reason() == ExitReason::Io);
    CHECK(out.io().port() == 0x81);
    CHECK(out.io().value() == value);
  }
  CHECK(vcpu.run().reason() == ExitReason::Hlt);
}

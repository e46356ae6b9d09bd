// Interrupts and eventfds: an in-kernel irqchip delivering an MSI routed from an irqfd to the
// guest's handler, KVM_SIGNAL_MSI, KVM_IRQ_LINE, and ioeventfds that fire without an exit.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "guest.h"

using namespace testing;
using kvm::ExitReason;
using kvm::x86::mem;
namespace abi = kvm::abi;

namespace {

struct EventFd {
  kvm::Fd fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  void signal() const {
    std::uint64_t one = 1;
    REQUIRE(::write(fd.get(), &one, 8) == 8);
  }
  // The counter, or 0 when nothing was signalled.
  std::uint64_t take() const {
    std::uint64_t v = 0;
    return ::read(fd.get(), &v, 8) == 8 ? v : 0;
  }
};

constexpr std::uint64_t kLapic = 0xfee00000;

// A guest that enables its LAPIC, reports ready on port 0x80, and halts with interrupts on.
// Vectors 0x40 and 0x41 report their number on port 0x81 and send EOI.
GuestOptions irq_options() {
  GuestOptions o;
  o.irqchip = true;
  o.idt = true;
  o.mapped = 4ull << 30;  // the LAPIC page lies just below 4 GiB
  return o;
}

void irq_program(Assembler& a, kvm::x86::Label handler40, kvm::x86::Label handler41) {
  a.mov(Reg::Rbx, kLapic);
  a.mov(Reg::Rax, 0x1ff);  // SVR: software enable, spurious vector 0xff
  a.store(Width::k32, mem(Reg::Rbx, 0xf0), Reg::Rax);
  a.out(Width::k8, 0x80);
  a.sti();
  auto idle = a.new_label();
  a.bind(idle);
  a.hlt();
  a.jmp(idle);
  for (auto [label, vector] : {std::pair{handler40, 0x40}, std::pair{handler41, 0x41}}) {
    a.bind(label);
    a.mov(Reg::Rax, static_cast<std::uint64_t>(vector));
    a.out(Width::k8, 0x81);
    a.mov(Reg::Rbx, kLapic);
    a.store_imm(Width::k32, mem(Reg::Rbx, 0xb0), 0);  // EOI
    a.iretq();
  }
}

struct IrqGuest {
  kvm::x86::Label h40, h41;
  std::array<std::size_t, 2> offsets{};  // before g: g's constructor fills it
  LongModeGuest g;
  IrqGuest()
      : g(
            [this](Assembler& a) {
              h40 = a.new_label();
              h41 = a.new_label();
              irq_program(a, h40, h41);
              offsets = {a.label_offset(h40), a.label_offset(h41)};
            },
            irq_options()) {
    for (int i = 0; i < 2; ++i) {
      kvm::x86::write_idt_gate(g.ram, 0, *g.layout.idt, static_cast<std::uint8_t>(0x40 + i),
                               g.layout.code + offsets[i]);
    }
    kvm::Exit e = g.run();
    REQUIRE(e.reason() == ExitReason::Io);
    REQUIRE(e.io().port() == 0x80);
  }
  // Runs until the guest's handler reports; returns the vector it reported.
  int wait_for_handler() {
    kvm::Exit e = g.run();
    REQUIRE(e.reason() == ExitReason::Io);
    REQUIRE(e.io().port() == 0x81);
    return static_cast<int>(e.io().value());
  }
};

}  // namespace

TEST_CASE("irqfd: an eventfd routed as an MSI reaches the guest's handler") {
  IrqGuest ig;
  kvm::IrqRouting routing;
  abi::kvm_irq_routing_entry route{};
  route.gsi = 30;
  route.type = abi::to_underlying(abi::IrqRoutingType::Msi);
  route.u.msi.address_lo = static_cast<std::uint32_t>(kLapic);
  route.u.msi.data = 0x40;  // fixed delivery, vector 0x40, to APIC ID 0
  routing.push_back(route);
  ig.g.vm.set_gsi_routing(routing);
  EventFd ev;
  ig.g.vm.irqfd(ev.fd.get(), 30);
  ev.signal();
  CHECK(ig.wait_for_handler() == 0x40);
  ev.signal();  // a second interrupt after EOI
  CHECK(ig.wait_for_handler() == 0x40);
  ig.g.vm.irqfd_deassign(ev.fd.get(), 30);
}

TEST_CASE("KVM_SIGNAL_MSI injects a vector directly") {
  IrqGuest ig;
  CHECK(ig.g.vm.signal_msi(kLapic, 0x41) > 0);
  CHECK(ig.wait_for_handler() == 0x41);
}

TEST_CASE("KVM_IRQ_LINE toggles irqchip pins; without an irqchip it fails with a clear error") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  CHECK_THROWS_WITH(vm.irq_line(4, true),
                    Catch::StartsWith("KVM_IRQ_LINE: ") && Catch::EndsWith("(irq 4)"));
  vm.create_irqchip();
  vm.irq_line(4, true);
  vm.irq_line(4, false);
}

TEST_CASE("ioeventfd: port and MMIO writes signal the eventfd without an exit") {
  constexpr std::uint64_t kMmio = 0x10000000;
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rdx, 0x600);
    a.mov(Reg::Rax, 7);
    a.out_dx(Width::k8);  // matches the datamatch registration: no exit
    a.mov(Reg::Rax, 8);
    a.out_dx(Width::k8);  // does not match: an ordinary IO exit
    a.mov(Reg::Rbx, kMmio);
    a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);  // MMIO ioeventfd: no exit
    a.out(Width::k8, 0x10);
    a.hlt();
  });
  EventFd pio, mmio;
  kvm::IoEventFd port{
      .addr = 0x600, .length = 1, .eventfd = pio.fd.get(), .pio = true, .datamatch = 7};
  kvm::IoEventFd bar{.addr = kMmio, .length = 4, .eventfd = mmio.fd.get()};
  g.vm.ioeventfd(port);
  g.vm.ioeventfd(bar);
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().port() == 0x600);
  CHECK(e.io().value() == 8);
  CHECK(pio.take() == 1);
  e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  CHECK(e.io().port() == 0x10);
  CHECK(mmio.take() == 1);
  CHECK(g.run().reason() == ExitReason::Hlt);
  g.vm.ioeventfd_deassign(port);
  g.vm.ioeventfd_deassign(bar);
  kvm::IoEventFd odd{.addr = 0x600, .length = 3, .eventfd = pio.fd.get(), .pio = true};
  CHECK_THROWS_WITH(g.vm.ioeventfd(odd),
                    "KVM_IOEVENTFD: Invalid argument (length 3 is not 0, 1, 2, 4 or 8)");
}

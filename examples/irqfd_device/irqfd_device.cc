// Multi-vCPU guest with an in-kernel irqchip and an irqfd-driven device.
//
// What a VMM author can copy from here:
//  * KVM_CREATE_IRQCHIP before the vCPUs, so the local APICs live in the kernel: a guest
//    `hlt` then blocks inside KVM_RUN until an interrupt arrives, with no exit to userspace;
//  * secondary vCPUs start in the wait-for-SIPI state (KVM_MP_STATE_UNINITIALIZED) under an
//    in-kernel irqchip; without firmware to send INIT/SIPI we make them runnable directly;
//  * GSI routing (KVM_SET_GSI_ROUTING) with one MSI route per vCPU, so interrupt N goes to
//    the local APIC of vCPU N with a chosen vector, no IOAPIC programming needed;
//  * a device model in its own thread that never touches a vCPU: the guest rings a doorbell
//    (an `out` matched in the kernel by KVM_IOEVENTFD, which only signals an eventfd) and the
//    device answers by writing guest memory and signalling an eventfd bound with KVM_IRQFD;
//  * one thread per vCPU, and a watchdog that kicks every vCPU out of KVM_RUN if something
//    hangs.
//
// The device ("squarer") has one mailbox per vCPU in guest memory: the guest writes a number,
// rings its doorbell, halts until the completion interrupt, reads the square and repeats. At
// the end each vCPU reports the sum of the squares through a port the VMM handles itself.
//
// Build: see examples/README.md. Exit status 0 when every vCPU's sum is right.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "kvm/kvm.h"
#include "kvm/x86/asm.h"
#include "kvm/x86/long_mode.h"

namespace {

using kvm::x86::Assembler;
using kvm::x86::mem;
using kvm::x86::Reg;
using kvm::x86::Width;

constexpr unsigned kVcpus = 4;
constexpr int kRounds = 16;
constexpr std::uint8_t kVector = 0x40;           // the completion interrupt's vector
constexpr std::uint32_t kFirstGsi = 10;          // GSI kFirstGsi + n interrupts vCPU n
constexpr std::uint64_t kMailboxes = 0x300000;   // guest-physical; 64 bytes per vCPU
constexpr std::uint16_t kDoorbellPort = 0x200;   // + vCPU id; matched by ioeventfd
constexpr std::uint16_t kResultPort = 0x300;     // + vCPU id; handled by the VMM
constexpr std::uint64_t kLapicEoi = 0xfee000b0;  // local APIC end-of-interrupt register

// Mailbox layout (one per vCPU).
constexpr int kRequest = 0, kResponse = 8, kDone = 16;

// A Linux eventfd, closed on destruction.
struct EventFd {
  kvm::Fd fd{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  EventFd() {
    if (!fd) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  void signal() const {
    std::uint64_t one = 1;
    if (::write(fd.get(), &one, sizeof one) != sizeof one)
      throw std::system_error(errno, std::generic_category(), "eventfd write");
  }
  bool consume() const {
    std::uint64_t n;
    return ::read(fd.get(), &n, sizeof n) == sizeof n;
  }
};

// The guest program, shared by all vCPUs. On entry rdi = vCPU id, rsi = its mailbox,
// r14 = the first number to square. Returns the handler's guest address via `handler_offset`.
std::vector<std::uint8_t> guest_program(std::size_t& handler_offset) {
  Assembler a;
  auto round = a.new_label(), wait = a.new_label(), got = a.new_label(), handler = a.new_label();
  a.cli();
  a.mov(Reg::R12, kRounds);  // rounds left
  a.mov(Reg::R13, 0);        // sum of the answers
  a.bind(round);
  a.store_imm(Width::k64, mem(Reg::Rsi, kDone), 0);
  a.store(Width::k64, mem(Reg::Rsi, kRequest), Reg::R14);
  a.mov(Reg::Rdx, kDoorbellPort);  // out to kDoorbellPort + id: the doorbell
  a.add(Reg::Rdx, Reg::Rdi);
  a.mov(Reg::Rax, Reg::Rdi);
  a.out_dx(Width::k32);
  a.bind(wait);  // sleep until the interrupt handler has set mailbox.done
  a.cmp(Width::k64, mem(Reg::Rsi, kDone), 0);
  a.jne(got);
  a.sti();  // sti; hlt is atomic: the interrupt cannot slip in between
  a.hlt();
  a.cli();
  a.jmp(wait);
  a.bind(got);
  a.load(Width::k64, Reg::Rax, mem(Reg::Rsi, kResponse));
  a.add(Reg::R13, Reg::Rax);
  a.inc(Reg::R14);
  a.dec(Reg::R12);
  a.jne(round);
  a.mov(Reg::Rax, Reg::R13);  // report the sum: out to kResultPort + id
  a.mov(Reg::Rdx, kResultPort);
  a.add(Reg::Rdx, Reg::Rdi);
  a.out_dx(Width::k32);
  a.hlt();  // not reached: the VMM stops running this vCPU after the report

  a.bind(handler);  // completion interrupt: mark done, EOI the local APIC
  a.store_imm(Width::k64, mem(Reg::Rsi, kDone), 1);
  a.push(Reg::Rbx);
  a.mov(Reg::Rbx, kLapicEoi);
  a.store_imm(Width::k32, mem(Reg::Rbx, 0), 0);
  a.pop(Reg::Rbx);
  a.iretq();
  handler_offset = a.label_offset(handler);
  return a.finish();
}

std::uint64_t expected_sum(unsigned id) {
  std::uint64_t sum = 0;
  for (std::uint64_t k = 0; k < kRounds; ++k) {
    std::uint64_t x = 100 * id + 1 + k;
    sum += x * x;
  }
  return sum;
}

}  // namespace

int main() try {
  using namespace std::chrono;
  const auto t0 = steady_clock::now();
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  vm.create_irqchip();  // PIC + IOAPIC + one local APIC per vCPU, in the kernel

  // Guest memory and a 64-bit environment: identity map up to 4 GiB so the guest reaches the
  // local APIC at 0xfee00000, and an IDT for the completion vector.
  kvm::GuestMemory memory;
  std::span<std::uint8_t> ram = memory.add(vm, 0, 4 << 20);
  kvm::x86::GuestLayout layout;
  layout.mapped_size = 4ull << 30;
  layout.idt = 0x2000;
  kvm::x86::write_long_mode_tables(ram, 0, layout);
  std::size_t handler_offset = 0;
  kvm::x86::write_bytes(ram, 0, layout.code, guest_program(handler_offset));
  kvm::x86::write_idt_gate(ram, 0, *layout.idt, kVector, layout.code + handler_offset);

  // Interrupt routing: GSI kFirstGsi + n is an MSI to local APIC n with vector kVector.
  kvm::IrqRouting routing;
  for (unsigned n = 0; n < kVcpus; ++n) {
    kvm::abi::kvm_irq_routing_entry e{};
    e.gsi = kFirstGsi + n;
    e.type = kvm::abi::to_underlying(kvm::abi::IrqRoutingType::Msi);
    e.u.msi.address_lo = 0xfee00000u | (n << 12);  // destination APIC id in bits 12..19
    e.u.msi.data = kVector;                        // fixed delivery, edge, this vector
    routing.push_back(e);
  }
  vm.set_gsi_routing(routing);

  // The device's wiring: a doorbell eventfd (guest -> device) and an interrupt eventfd
  // (device -> guest) per vCPU.
  std::vector<EventFd> doorbells(kVcpus), interrupts(kVcpus);
  for (unsigned n = 0; n < kVcpus; ++n) {
    kvm::IoEventFd doorbell;
    doorbell.addr = kDoorbellPort + n;
    doorbell.length = 4;
    doorbell.pio = true;
    doorbell.eventfd = doorbells[n].fd.get();
    vm.ioeventfd(doorbell);
    vm.irqfd(interrupts[n].fd.get(), kFirstGsi + n);
  }

  // The vCPUs: same code, own stack, own mailbox; local APIC software-enabled (SVR bit 8).
  std::vector<kvm::Vcpu> vcpus;
  for (unsigned n = 0; n < kVcpus; ++n) {
    vcpus.push_back(vm.create_vcpu(n));
    kvm::Vcpu& vcpu = vcpus.back();
    auto sregs = vcpu.sregs();
    kvm::x86::setup_long_mode_sregs(sregs, layout);
    vcpu.set_sregs(sregs);
    kvm::abi::kvm_regs regs{};
    kvm::x86::setup_regs(regs, layout.code, layout.stack_top - n * 0x4000);
    regs.rdi = n;
    regs.rsi = kMailboxes + n * 64;
    regs.r14 = 100 * n + 1;
    vcpu.set_regs(regs);
    kvm::abi::kvm_lapic_state lapic = vcpu.lapic();
    std::uint32_t svr;
    std::memcpy(&svr, &lapic.regs[0xf0], sizeof svr);
    svr |= 0x100;
    std::memcpy(&lapic.regs[0xf0], &svr, sizeof svr);
    vcpu.set_lapic(lapic);
    if (vcpu.mp_state() != kvm::abi::MpState::Runnable)
      vcpu.set_mp_state(kvm::abi::MpState::Runnable);
  }
  std::printf("vm: %u vCPUs, in-kernel irqchip, %u MSI routes, %u ioeventfd doorbells, %u irqfds\n",
              kVcpus, kVcpus, kVcpus, kVcpus);

  // The device thread: waits on the doorbells, squares the request, raises the interrupt.
  EventFd stop;
  std::atomic<int> served{0};
  std::thread device([&] {
    std::vector<pollfd> fds;
    for (const EventFd& d : doorbells) fds.push_back({d.fd.get(), POLLIN, 0});
    fds.push_back({stop.fd.get(), POLLIN, 0});
    for (;;) {
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds.back().revents) return;
      for (unsigned n = 0; n < kVcpus; ++n) {
        if (!(fds[n].revents & POLLIN) || !doorbells[n].consume()) continue;
        const std::uint64_t box = kMailboxes + n * 64;
        const auto x = memory.read_obj<std::uint64_t>(box + kRequest);
        memory.write_obj<std::uint64_t>(box + kResponse, x * x);
        interrupts[n].signal();  // KVM_IRQFD: the kernel injects GSI kFirstGsi + n
        served.fetch_add(1);
      }
    }
  });

  // One thread per vCPU; the only exit we expect is the final report.
  std::vector<std::uint64_t> sums(kVcpus, 0);
  std::vector<std::string> errors(kVcpus);
  std::atomic<unsigned> finished{0};
  std::vector<std::thread> threads;
  for (unsigned n = 0; n < kVcpus; ++n) {
    threads.emplace_back([&, n] {
      try {
        for (;;) {
          kvm::Exit e = vcpus[n].run();
          if (e.interrupted()) {
            errors[n] = "stopped by the watchdog";
            break;
          }
          if (e.reason() == kvm::ExitReason::Io && e.io().port() == kResultPort + n) {
            sums[n] = e.io().value();
            break;
          }
          errors[n] = "unexpected exit " + e.name();
          break;
        }
      } catch (const std::exception& ex) {
        errors[n] = ex.what();
      }
      finished.fetch_add(1);
    });
  }

  // Watchdog: if the guests have not finished in 30 s, kick every vCPU out of KVM_RUN.
  std::vector<kvm::Kicker> kickers;
  for (const kvm::Vcpu& v : vcpus) kickers.push_back(v.kicker());
  const auto deadline = steady_clock::now() + seconds(30);
  while (finished.load() < kVcpus && steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(5));
  if (finished.load() < kVcpus) {
    for (const kvm::Kicker& k : kickers) k.kick();
  }
  for (std::thread& t : threads) t.join();
  stop.signal();
  device.join();

  bool ok = true;
  for (unsigned n = 0; n < kVcpus; ++n) {
    const std::uint64_t want = expected_sum(n);
    const bool good = errors[n].empty() && sums[n] == want;
    ok &= good;
    std::printf("vcpu %u: %d requests, sum of squares %llu (expected %llu)%s%s\n", n, kRounds,
                static_cast<unsigned long long>(sums[n]), static_cast<unsigned long long>(want),
                errors[n].empty() ? "" : ": ", errors[n].c_str());
  }
  std::printf("device: %d requests served, each answered with one irqfd interrupt\n",
              served.load());
  const bool all_served = served.load() == static_cast<int>(kVcpus) * kRounds;
  ok &= all_served;
  std::printf("%s (%.0f ms)\n", ok ? "OK" : "FAILED",
              duration<double, std::milli>(steady_clock::now() - t0).count());
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "irqfd_device: %s\n", e.what());
  return 1;
}

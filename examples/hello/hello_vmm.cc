// A complete, minimal VMM: boots a 64-bit guest built right here (identity page tables, GDT,
// long-mode registers and a program from the assembler; no binary blob), serves its serial
// port and a result register, and prints what the guest said.
//
//   bazel run //examples/hello:hello_vmm
//
// The guest prints a greeting on COM1 (port 0x3f8), computes 1 + 2 + ... + 100 and reports
// the sum on port 0x500, writes a status word to an MMIO register at 0x10000000, reads a
// value the VMM supplies from the same device, echoes it on port 0x501, and halts.
#include <cstdio>
#include <cstring>
#include <string>

#include "kvm/kvm.h"
#include "kvm/x86/asm.h"
#include "kvm/x86/long_mode.h"

namespace {

constexpr std::uint16_t kSerial = 0x3f8;
constexpr std::uint16_t kResultPort = 0x500;
constexpr std::uint16_t kEchoPort = 0x501;
constexpr std::uint64_t kMmioDevice = 0x10000000;  // inside the identity map, outside RAM
constexpr std::uint64_t kMessageAddr = 0x20000;
constexpr char kMessage[] = "Hello from a 64-bit guest!\n";

}  // namespace

int main() {
  try {
    using kvm::x86::mem;
    using kvm::x86::Reg;
    using kvm::x86::Width;

    kvm::System sys;
    kvm::Vm vm = sys.create_vm();
    kvm::GuestMemory memory;
    auto ram = memory.add(vm, 0, 2 << 20);

    kvm::x86::GuestLayout layout;  // GDT, TSS, page tables, code and stack below 1 MiB
    kvm::x86::write_long_mode_tables(ram, 0, layout);
    memory.write(kMessageAddr,
                 {reinterpret_cast<const std::uint8_t*>(kMessage), sizeof(kMessage) - 1});

    kvm::x86::Assembler a;
    a.mov(Reg::Rsi, kMessageAddr);
    a.mov(Reg::Rcx, sizeof(kMessage) - 1);
    a.mov(Reg::Rdx, kSerial);
    auto next = a.new_label();
    a.bind(next);
    a.load_zx(Width::k8, Reg::Rax, mem(Reg::Rsi));
    a.out_dx(Width::k8);
    a.inc(Reg::Rsi);
    a.dec(Reg::Rcx);
    a.jne(next);
    a.xor_(Reg::Rax, Reg::Rax);
    a.mov(Reg::Rcx, 100);
    auto sum = a.new_label();
    a.bind(sum);
    a.add(Reg::Rax, Reg::Rcx);
    a.dec(Reg::Rcx);
    a.jne(sum);
    a.mov(Reg::Rdx, kResultPort);
    a.out_dx(Width::k32);
    a.mov(Reg::Rbx, kMmioDevice);
    a.mov(Reg::Rax, 0x600d);
    a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);  // status register
    a.load(Width::k32, Reg::Rax, mem(Reg::Rbx, 4));   // data register, supplied by the VMM
    a.mov(Reg::Rdx, kEchoPort);
    a.out_dx(Width::k32);
    a.hlt();
    kvm::x86::write_bytes(ram, 0, layout.code, a.finish(), "guest code");

    kvm::Vcpu vcpu = vm.create_vcpu(0);
    kvm::x86::start_in_long_mode(vcpu, layout);

    std::string serial;
    std::uint32_t result = 0, status = 0, echo = 0;
    unsigned exits = 0;
    for (bool running = true; running;) {
      kvm::Exit e = vcpu.run();
      ++exits;
      if (e.interrupted()) continue;
      switch (e.reason()) {
        case kvm::ExitReason::Io: {
          kvm::IoExit io = e.io();
          if (io.is_out() && io.port() == kSerial) {
            for (std::uint8_t b : io.data()) serial += static_cast<char>(b);
          } else if (io.is_out() && io.port() == kResultPort) {
            result = io.value();
          } else if (io.is_out() && io.port() == kEchoPort) {
            echo = io.value();
          } else {
            std::fprintf(stderr, "unexpected port access 0x%x\n", io.port());
            return 1;
          }
          break;
        }
        case kvm::ExitReason::Mmio: {
          kvm::MmioExit m = e.mmio();
          if (m.is_write() && m.phys_addr() == kMmioDevice) {
            status = static_cast<std::uint32_t>(m.value());
          } else if (!m.is_write() && m.phys_addr() == kMmioDevice + 4) {
            m.set_value(0xc0ffee);
          } else {
            std::fprintf(stderr, "unexpected MMIO at 0x%llx\n",
                         static_cast<unsigned long long>(m.phys_addr()));
            return 1;
          }
          break;
        }
        case kvm::ExitReason::Hlt:
          running = false;
          break;
        default:
          std::fprintf(stderr, "unexpected exit %s\n", e.name().c_str());
          return 1;
      }
    }
    std::printf("guest said: %s", serial.c_str());
    std::printf("guest computed 1+...+100 = %u\n", result);
    std::printf("guest status register: 0x%x\n", status);
    std::printf("guest echoed the device value: 0x%x\n", echo);
    std::printf("%u exits, guest halted\n", exits);
    bool ok = serial == kMessage && result == 5050 && status == 0x600d && echo == 0xc0ffee;
    std::printf("%s\n", ok ? "OK" : "FAILED");  // the verdict every example ends with
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hello_vmm: %s\n", e.what());
    return 1;
  }
}

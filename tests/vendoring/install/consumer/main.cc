// A tiny VMM built against an installed (or vendored) kvm-cpp: a 64-bit guest that writes
// "hi from the guest\n" to port 0x3f8 and halts. Prints what the guest wrote; exit 0 on success.
#include <cstdio>
#include <string>

#include "kvm/kvm.h"
#include "kvm/x86/asm.h"
#include "kvm/x86/long_mode.h"

int main() try {
  using kvm::x86::Reg;
  using kvm::x86::Width;
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemory memory;
  std::span<std::uint8_t> ram = memory.add(vm, 0, 2 << 20);
  kvm::x86::GuestLayout layout;
  kvm::x86::write_long_mode_tables(ram, 0, layout);
  kvm::x86::Assembler a;
  for (char c : std::string("hi from the guest\n")) {
    a.mov(Reg::Rax, static_cast<std::uint8_t>(c));
    a.out(Width::k8, 0xf8);  // imm8 port; the VMM accepts any port
  }
  a.hlt();
  kvm::x86::write_bytes(ram, 0, layout.code, a.finish());
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  kvm::x86::start_in_long_mode(vcpu, layout);
  std::string out;
  for (;;) {
    kvm::Exit e = vcpu.run();
    if (e.interrupted()) continue;
    if (e.reason() == kvm::ExitReason::Io) {
      for (std::uint8_t b : e.io().data()) out += static_cast<char>(b);
      continue;
    }
    if (e.reason() == kvm::ExitReason::Hlt) break;
    std::fprintf(stderr, "unexpected exit %s\n", e.name().c_str());
    return 1;
  }
  std::printf("KVM API %d; guest said: %s", sys.api_version(), out.c_str());
  return out == "hi from the guest\n" ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kvm_consumer: %s\n", e.what());
  return 1;
}

// A complete, minimal arm64 VMM: boots a guest built right here (kvm::aarch64::Assembler, no
// binary blob) at EL1 with the MMU off, serves a UART data register and a small MMIO device,
// and prints what the guest said. It needs /dev/kvm on an arm64 host, or the QEMU harness:
//
//   tools/qemu/run.sh aarch64 bookworm hello_vmm
//
// The guest writes a greeting byte by byte to the UART at 0x09000000, computes
// 1 + 2 + ... + 100 and stores the sum in the device's result register, reads a value the VMM
// supplies from the device and echoes it back, then powers off with PSCI SYSTEM_OFF.
#include <cstdio>
#include <cstring>
#include <string>

#include "kvm/aarch64/asm.h"
#include "kvm/aarch64/regs.h"
#include "kvm/kvm.h"

namespace {

constexpr std::uint64_t kRam = 0x40000000;
constexpr std::uint64_t kUart = 0x09000000;    // no slot there: every access is an MMIO exit
constexpr std::uint64_t kDevice = 0x0a000000;  // +0 result, +8 value from the VMM, +16 echo
constexpr std::uint64_t kMessageAddr = kRam + 0x1000;
constexpr char kMessage[] = "Hello from an arm64 guest!\n";

std::vector<std::uint8_t> guest_program() {
  using kvm::aarch64::x;
  kvm::aarch64::Assembler a;
  a.mov(x(1), kMessageAddr);
  a.mov(x(2), sizeof(kMessage) - 1);
  a.mov(x(4), kUart);
  auto next = a.new_label();
  a.bind(next);
  a.ldr(1, x(3), x(1));
  a.str(1, x(3), x(4));
  a.add(x(1), x(1), 1);
  a.sub(x(2), x(2), 1);
  a.cbnz(x(2), next);

  a.mov(x(0), 0);
  a.mov(x(1), 100);
  auto sum = a.new_label();
  a.bind(sum);
  a.add_reg(x(0), x(0), x(1));
  a.sub(x(1), x(1), 1);
  a.cbnz(x(1), sum);
  a.mov(x(4), kDevice);
  a.str(8, x(0), x(4), 0);
  a.ldr(8, x(5), x(4), 8);
  a.str(8, x(5), x(4), 16);

  a.mov(x(0), kvm::aarch64::kPsciSystemOff);
  a.hvc(0);
  return a.finish();
}

}  // namespace

int main() {
  try {
    kvm::System sys;
    kvm::Vm vm = sys.create_vm();
    kvm::GuestMemory memory;
    memory.add(vm, kRam, 2 << 20);
    memory.write(kRam, guest_program());
    memory.write(kMessageAddr,
                 {reinterpret_cast<const std::uint8_t*>(kMessage), sizeof(kMessage) - 1});

    // The host's preferred vCPU target with PSCI 0.2, so SYSTEM_OFF is understood.
    kvm::Vcpu vcpu = vm.create_vcpu(0);
    kvm::abi::kvm_vcpu_init init = vm.arm_preferred_target();
    init.features[0] |= 1u << kvm::abi::consts::ArmVcpuPsci0_2;
    vcpu.arm_vcpu_init(init);
    std::uint64_t pc = kRam;
    vcpu.set_one_reg(kvm::aarch64::kRegPc, &pc);

    std::string uart;
    std::uint64_t result = 0, echo = 0;
    unsigned exits = 0;
    for (bool running = true; running;) {
      kvm::Exit e = vcpu.run();
      ++exits;
      if (e.interrupted()) continue;
      if (e.reason() == kvm::ExitReason::SystemEvent) {
        running = false;
      } else if (e.reason() == kvm::ExitReason::Mmio) {
        kvm::MmioExit m = e.mmio();
        if (m.is_write() && m.phys_addr() == kUart) {
          uart += static_cast<char>(m.value());
        } else if (m.is_write() && m.phys_addr() == kDevice) {
          result = m.value();
        } else if (!m.is_write() && m.phys_addr() == kDevice + 8) {
          m.set_value(0xc0ffee);
        } else if (m.is_write() && m.phys_addr() == kDevice + 16) {
          echo = m.value();
        } else {
          std::fprintf(stderr, "unexpected MMIO at 0x%llx\n",
                       static_cast<unsigned long long>(m.phys_addr()));
          return 1;
        }
      } else {
        std::fprintf(stderr, "unexpected exit %s\n", e.name().c_str());
        return 1;
      }
    }
    std::printf("guest said: %s", uart.c_str());
    std::printf("guest computed 1+...+100 = %llu\n", static_cast<unsigned long long>(result));
    std::printf("guest echoed the device value: 0x%llx\n", static_cast<unsigned long long>(echo));
    std::printf("%u exits, guest powered off (PSCI SYSTEM_OFF)\n", exits);
    return uart == kMessage && result == 5050 && echo == 0xc0ffee ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hello_vmm: %s\n", e.what());
    return 1;
  }
}

// A complete, minimal riscv64 VMM: boots a guest built right here (kvm::riscv64::Assembler,
// no binary blob) in VS-mode with paging off, serves an SBI console call, a small MMIO device
// and prints what the guest said. It needs /dev/kvm on a riscv64 host with the H extension,
// or the QEMU harness:
//
//   tools/qemu/run.sh riscv64 trixie hello_vmm
//
// The guest sends its greeting one byte per SBI call to a vendor extension (KVM forwards
// vendor extensions to the VMM as KVM_EXIT_RISCV_SBI), computes 1 + 2 + ... + 100 and stores
// the sum in the device's result register, reads a value the VMM supplies from the device and
// echoes it back, then shuts down with SBI SRST.
#include <cstdio>
#include <cstring>
#include <string>

#include "kvm/kvm.h"
#include "kvm/riscv64/asm.h"
#include "kvm/riscv64/regs.h"

namespace {

using kvm::riscv64::Reg;

constexpr std::uint64_t kRam = 0x80000000;
constexpr std::uint64_t kDevice = 0x10000000;  // +0 result, +8 value from the VMM, +16 echo
constexpr std::uint64_t kMessageAddr = kRam + 0x1000;
constexpr std::uint64_t kPutcharExt = kvm::riscv64::kSbiVendorFirst + 1;  // ours: a0 = byte
constexpr char kMessage[] = "Hello from a riscv64 guest!\n";

std::vector<std::uint8_t> guest_program() {
  kvm::riscv64::Assembler a;
  a.li(Reg::s1, kMessageAddr);
  a.li(Reg::s2, sizeof(kMessage) - 1);
  a.li(Reg::a7, kPutcharExt);
  a.li(Reg::a6, 0);
  auto next = a.new_label();
  a.bind(next);
  a.load(1, Reg::a0, Reg::s1);
  a.ecall();
  a.addi(Reg::s1, Reg::s1, 1);
  a.addi(Reg::s2, Reg::s2, -1);
  a.bne(Reg::s2, Reg::zero, next);

  a.li(Reg::t0, 0);
  a.li(Reg::t1, 100);
  auto sum = a.new_label();
  a.bind(sum);
  a.add(Reg::t0, Reg::t0, Reg::t1);
  a.addi(Reg::t1, Reg::t1, -1);
  a.bne(Reg::t1, Reg::zero, sum);
  a.li(Reg::t2, kDevice);
  a.store(8, Reg::t0, Reg::t2, 0);
  a.load(8, Reg::t3, Reg::t2, 8);
  a.store(8, Reg::t3, Reg::t2, 16);

  a.li(Reg::a0, kvm::riscv64::kSbiSrstShutdown);
  a.li(Reg::a1, 0);
  a.li(Reg::a7, kvm::riscv64::kSbiExtSrst);
  a.li(Reg::a6, 0);
  a.ecall();
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

    kvm::Vcpu vcpu = vm.create_vcpu(0);  // starts in S-mode; only its PC needs setting
    std::uint64_t pc = kRam;
    vcpu.set_one_reg(kvm::riscv64::kRegPc, &pc);

    std::string console;
    std::uint64_t result = 0, echo = 0;
    unsigned exits = 0;
    for (bool running = true; running;) {
      kvm::Exit e = vcpu.run();
      ++exits;
      if (e.interrupted()) continue;
      if (e.reason() == kvm::ExitReason::SystemEvent) {
        running = false;
      } else if (e.reason() == kvm::ExitReason::RiscvSbi &&
                 e.run().riscv_sbi.extension_id == kPutcharExt) {
        console += static_cast<char>(e.run().riscv_sbi.args[0]);
        e.run().riscv_sbi.ret[0] = 0;  // SBI_SUCCESS, in the guest's a0
      } else if (e.reason() == kvm::ExitReason::Mmio) {
        kvm::MmioExit m = e.mmio();
        if (m.is_write() && m.phys_addr() == kDevice) {
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
    std::printf("guest said: %s", console.c_str());
    std::printf("guest computed 1+...+100 = %llu\n", static_cast<unsigned long long>(result));
    std::printf("guest echoed the device value: 0x%llx\n", static_cast<unsigned long long>(echo));
    std::printf("%u exits, guest shut down (SBI SRST)\n", exits);
    return console == kMessage && result == 5050 && echo == 0xc0ffee ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hello_vmm: %s\n", e.what());
    return 1;
  }
}

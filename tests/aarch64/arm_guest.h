// Test helper: an arm64 VM with RAM at kRamBase, vCPUs initialised with the host's preferred
// target (PSCI 0.2 on) and a guest program assembled with kvm::aarch64::Assembler at the
// start of RAM. The guest runs at EL1 with the MMU off, so every address is physical and a
// load or store outside RAM is an MMIO exit.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "kvm/aarch64/asm.h"
#include "kvm/aarch64/regs.h"
#include "kvm/kvm.h"

namespace testing {

using kvm::aarch64::Assembler;
using kvm::aarch64::x;

inline constexpr std::uint64_t kRamBase = 0x40000000;
inline constexpr std::uint64_t kRamSize = 2 << 20;
inline constexpr std::uint64_t kMmioBase = 0x10000000;  // below RAM, no slot: MMIO exits

struct ArmGuest {
  kvm::System sys;
  kvm::Vm vm;
  kvm::GuestMemory mem;
  std::span<std::uint8_t> ram;
  kvm::abi::kvm_vcpu_init init;

  explicit ArmGuest(kvm::abi::MemoryFlags flags = {})
      : vm(sys.create_vm()), ram(mem.add(vm, kRamBase, kRamSize, flags)), init(make_init()) {}

  // A vCPU initialised with `init`; `powered_off` starts it waiting for PSCI CPU_ON.
  kvm::Vcpu vcpu(unsigned id, bool powered_off = false) {
    kvm::Vcpu v = vm.create_vcpu(id);
    kvm::abi::kvm_vcpu_init i = init;
    if (powered_off) i.features[0] |= 1u << kvm::abi::consts::ArmVcpuPowerOff;
    v.arm_vcpu_init(i);
    return v;
  }

  // Assembles `program` at `offset` into RAM; returns its guest-physical address.
  std::uint64_t load(const std::function<void(Assembler&)>& program, std::uint64_t offset = 0) {
    Assembler a;
    program(a);
    std::vector<std::uint8_t> code = a.finish();
    mem.write(kRamBase + offset, code);
    return kRamBase + offset;
  }

  // A vCPU that starts at `program` (vCPU 0 unless told).
  kvm::Vcpu start(const std::function<void(Assembler&)>& program, unsigned id = 0) {
    std::uint64_t pc = load(program);
    kvm::Vcpu v = vcpu(id);
    v.set_one_reg(kvm::aarch64::kRegPc, &pc);
    return v;
  }

  // Runs until an exit that is not an interruption.
  static kvm::Exit run(kvm::Vcpu& v) {
    for (;;) {
      kvm::Exit e = v.run();
      if (!e.interrupted()) return e;
    }
  }

 private:
  kvm::abi::kvm_vcpu_init make_init() const {
    kvm::abi::kvm_vcpu_init i = vm.arm_preferred_target();
    i.features[0] |= 1u << kvm::abi::consts::ArmVcpuPsci0_2;
    return i;
  }
};

// Guest code: PSCI SYSTEM_OFF through hvc, which ends the run with KVM_EXIT_SYSTEM_EVENT.
inline void system_off(Assembler& a) {
  a.mov(x(0), kvm::aarch64::kPsciSystemOff);
  a.hvc(0);
}

}  // namespace testing

// Test helper: a riscv64 VM with RAM at kRamBase and vCPUs that start in VS-mode with
// paging off at a guest program assembled with kvm::riscv64::Assembler, so every address is
// physical and a load or store outside RAM is an MMIO exit.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "kvm/kvm.h"
#include "kvm/riscv64/asm.h"
#include "kvm/riscv64/regs.h"

namespace testing {

using kvm::riscv64::Assembler;
using kvm::riscv64::Reg;

inline constexpr std::uint64_t kRamBase = 0x80000000;
inline constexpr std::uint64_t kRamSize = 2 << 20;
inline constexpr std::uint64_t kMmioBase = 0x10000000;  // no slot: MMIO exits

struct RvGuest {
  kvm::System sys;
  kvm::Vm vm;
  kvm::GuestMemory mem;
  std::span<std::uint8_t> ram;

  explicit RvGuest(kvm::abi::MemoryFlags flags = {})
      : vm(sys.create_vm()), ram(mem.add(vm, kRamBase, kRamSize, flags)) {}

  // Assembles `program` at `offset` into RAM; returns its guest-physical address.
  std::uint64_t load(const std::function<void(Assembler&)>& program, std::uint64_t offset = 0) {
    Assembler a;
    program(a);
    std::vector<std::uint8_t> code = a.finish();
    mem.write(kRamBase + offset, code);
    return kRamBase + offset;
  }

  // A vCPU that starts at `program`.
  kvm::Vcpu start(const std::function<void(Assembler&)>& program, unsigned id = 0) {
    std::uint64_t pc = load(program);
    kvm::Vcpu v = vm.create_vcpu(id);
    v.set_one_reg(kvm::riscv64::kRegPc, &pc);
    return v;
  }

  // Runs until an exit that is not an interruption.
  static kvm::Exit run(kvm::Vcpu& v) {
    for (;;) {
      kvm::Exit e = v.run();
      if (!e.interrupted()) return e;
    }
  }
};

// Guest code: an SBI call (extension `eid`, function `fid`, a0/a1 as given).
inline void sbi_call(Assembler& a, std::uint64_t eid, std::uint64_t fid) {
  a.li(Reg::a7, eid);
  a.li(Reg::a6, fid);
  a.ecall();
}

// Guest code: SBI SRST shutdown, which ends the run with KVM_EXIT_SYSTEM_EVENT.
inline void sbi_shutdown(Assembler& a) {
  a.li(Reg::a0, kvm::riscv64::kSbiSrstShutdown);
  a.li(Reg::a1, 0);
  sbi_call(a, kvm::riscv64::kSbiExtSrst, 0);
}

}  // namespace testing

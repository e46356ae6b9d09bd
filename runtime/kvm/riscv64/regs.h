// ONE_REG ids of the riscv64 core registers and CSRs, and the SBI ids the tests and examples
// use. Only for code built for riscv64 (it uses the riscv64 bindings).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kvm/abi/kvm_abi.h"

namespace kvm::riscv64 {

// KVM_REG_RISCV | KVM_REG_SIZE_U64 | <type> | index: core registers and CSRs are named by
// their 64-bit word index in struct kvm_riscv_core / kvm_riscv_csr (api.rst, "RISC-V
// registers"; the general CSRs keep subtype 0 on newer kernels).
constexpr std::uint64_t reg_id(std::int64_t type, std::size_t offset) {
  return abi::consts::RegRiscv | abi::consts::RegSizeU64 | static_cast<std::uint64_t>(type) |
         (offset / 8);
}
constexpr std::uint64_t core_reg(std::size_t offset_in_core) {
  return reg_id(abi::consts::RegRiscvCore, offset_in_core);
}
constexpr std::uint64_t csr_reg(std::size_t offset_in_csr) {
  return reg_id(abi::consts::RegRiscvCsr, offset_in_csr);
}

inline constexpr std::uint64_t kRegPc = core_reg(offsetof(abi::kvm_riscv_core, regs.pc));
inline constexpr std::uint64_t kRegA0 = core_reg(offsetof(abi::kvm_riscv_core, regs.a0));
inline constexpr std::uint64_t kRegA1 = core_reg(offsetof(abi::kvm_riscv_core, regs.a1));
inline constexpr std::uint64_t kRegMode = core_reg(offsetof(abi::kvm_riscv_core, mode));
inline constexpr std::uint64_t kCsrSstatus = csr_reg(offsetof(abi::kvm_riscv_csr, sstatus));
inline constexpr std::uint64_t kCsrStvec = csr_reg(offsetof(abi::kvm_riscv_csr, stvec));
inline constexpr std::uint64_t kCsrSscratch = csr_reg(offsetof(abi::kvm_riscv_csr, sscratch));
inline constexpr std::uint64_t kCsrSatp = csr_reg(offsetof(abi::kvm_riscv_csr, satp));
// a0..a7 are x10..x17, contiguous in user_regs_struct after pc.
constexpr std::uint64_t reg_a(unsigned n) {
  return core_reg(offsetof(abi::kvm_riscv_core, regs.a0) + 8 * n);
}

// SBI (RISC-V Supervisor Binary Interface 2.0): extension ids in a7, function id in a6.
inline constexpr std::uint64_t kSbiExtSrst = 0x53525354;  // "SRST": system reset
inline constexpr std::uint64_t kSbiExtBase = 0x10;
inline constexpr std::uint64_t kSbiVendorFirst = 0x09000000;  // KVM forwards these to userspace
inline constexpr std::uint64_t kSbiSrstShutdown = 0;          // reset_type in a0

}  // namespace kvm::riscv64

// ONE_REG ids of the arm64 core registers and the PSCI function ids, for Vcpu::get_one_reg /
// set_one_reg and guest code. Only for code built for aarch64 (it uses the aarch64 bindings).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kvm/abi/kvm_abi.h"

namespace kvm::aarch64 {

// KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset in struct kvm_regs) / 4: the
// kernel names core registers by their 32-bit word offset in kvm_regs (api.rst, "ARM64
// registers").
constexpr std::uint64_t core_reg(std::size_t offset_in_kvm_regs) {
  return abi::consts::RegArm64 | abi::consts::RegSizeU64 |
         static_cast<std::uint64_t>(abi::consts::RegArmCore) | (offset_in_kvm_regs / 4);
}

inline constexpr std::uint64_t kRegPc = core_reg(offsetof(abi::kvm_regs, regs.pc));
inline constexpr std::uint64_t kRegPstate = core_reg(offsetof(abi::kvm_regs, regs.pstate));
inline constexpr std::uint64_t kRegSp = core_reg(offsetof(abi::kvm_regs, regs.sp));
inline constexpr std::uint64_t kRegSpEl1 = core_reg(offsetof(abi::kvm_regs, sp_el1));
constexpr std::uint64_t reg_x(unsigned n) {
  return core_reg(offsetof(abi::kvm_regs, regs.regs) + 8 * n);
}

// PSCI 0.2+ function ids (SMC32 / SMC64 calling convention, Arm DEN 0022).
inline constexpr std::uint64_t kPsciVersion = 0x84000000;
inline constexpr std::uint64_t kPsciCpuOn64 = 0xc4000003;
inline constexpr std::uint64_t kPsciSystemOff = 0x84000008;
inline constexpr std::uint64_t kPsciSystemReset = 0x84000009;

// PSTATE of EL1 using SP_EL1 with D, A, I and F masked: what KVM_ARM_VCPU_INIT sets.
inline constexpr std::uint64_t kPstateEl1hMasked = 0x3c5;

}  // namespace kvm::aarch64

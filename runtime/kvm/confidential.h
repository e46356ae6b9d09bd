// Confidential VMs on x86 (AMD SEV, SEV-ES, SEV-SNP; Intel TDX): the command names of
// KVM_MEMORY_ENCRYPT_OP, for the methods Vm::memory_encrypt_op() and
// Vcpu::memory_encrypt_op() and their errors. The commands' structs are the generated
// abi::kvm_sev_* and abi::kvm_tdx_* of the newest headers; a command's `data` points to one.
#pragma once

#include <cstdint>
#include <string>

namespace kvm {

#if defined(__x86_64__)
// "KVM_SEV_INIT2", "KVM_SEV_SNP_LAUNCH_START", ..., or "SEV command 77" for one newer than
// the headers.
std::string sev_command_name(std::uint32_t id);
// "KVM_TDX_INIT_VM", ..., or "TDX command 9".
std::string tdx_command_name(std::uint32_t id);
#endif

}  // namespace kvm

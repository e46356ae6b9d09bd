// KVM_MEMORY_ENCRYPT_OP (SEV, SEV-ES and SEV-SNP on VM fds; TDX on VM and vCPU fds) and
// KVM_MEMORY_ENCRYPT_REG_REGION / KVM_MEMORY_ENCRYPT_UNREG_REGION.
#include "kvm/confidential.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <sstream>

#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "kvm/vm_type.h"

namespace kvm {

#if defined(__x86_64__)
namespace {

constexpr const char* kEncryptOp = "KVM_MEMORY_ENCRYPT_OP";
constexpr unsigned kVmTypes = 235;  // KVM_CAP_VM_TYPES, also with headers older than it
#if defined(KVM_ABI_HAS_KVM_CAP_VM_TYPES)
static_assert(kVmTypes == abi::to_underlying(abi::Cap::VmTypes));
#endif
constexpr int type_bit(X86VmType t) { return 1 << static_cast<int>(t); }
constexpr int kSevTypes =
    type_bit(X86VmType::Sev) | type_bit(X86VmType::SevEs) | type_bit(X86VmType::Snp);
[[maybe_unused]] constexpr int kTdxTypes = type_bit(X86VmType::Tdx);

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

// Errnos with which KVM turns down an encryption ioctl on a VM that is not confidential.
bool not_confidential(int err) { return err == ENOTTY || err == EINVAL || err == EOPNOTSUPP; }

// "; this host offers no SEV, SEV-ES or SNP VM type (KVM_CAP_VM_TYPES = 0x1)", or "" when it
// offers one (then the VM itself, or the command, is what the kernel refused).
std::string missing_type(int check_fd, int wanted, const char* family) {
  int offered = detail::check_extension(check_fd, kVmTypes);
  if (offered < 0 || (offered & wanted)) return "";
  return std::string("; this host offers no ") + family +
         " VM type (KVM_CAP_VM_TYPES = " + hex(static_cast<unsigned>(offered)) + ")";
}

// One KVM_MEMORY_ENCRYPT_OP: its argument is a pointer to the command, whatever the generated
// descriptor's argument type says (the header declares it as unsigned long).
int encrypt_op(int fd, void* cmd) {
  return detail::raw_ioctl(fd, abi::ioctl::MemoryEncryptOp::request,
                           reinterpret_cast<unsigned long>(cmd));
}

#if defined(KVM_ABI_HAS_KVM_X86_TDX_VM)
void tdx_op(int fd, int check_fd, abi::kvm_tdx_cmd& cmd) {
  int rc = encrypt_op(fd, &cmd);
  if (rc >= 0) return;
  std::string context = tdx_command_name(cmd.id);
  if (cmd.hw_error) context += ": TDX module error " + hex(cmd.hw_error);
  if (not_confidential(-rc)) context += missing_type(check_fd, kTdxTypes, "TDX");
  throw_error(kEncryptOp, -rc, context);
}

#endif

abi::kvm_enc_region enc_region(std::span<std::uint8_t> host, const char* ioctl_name) {
  if (host.empty()) throw Error(ioctl_name, EINVAL, "an empty region");
  abi::kvm_enc_region r{};
  r.addr = reinterpret_cast<std::uint64_t>(host.data());
  r.size = host.size();
  return r;
}

template <class Io>
void enc_region_op(const Vm& vm, std::span<std::uint8_t> host) {
  abi::kvm_enc_region r = enc_region(host, Io::name);
  int rc = vm.try_ioctl<Io>(r);
  if (rc >= 0) return;
  std::string context = hex(host.size()) + " bytes at host address " + hex(r.addr);
  if (not_confidential(-rc)) context += missing_type(vm.fd(), kSevTypes, "SEV, SEV-ES or SNP");
  throw_error(Io::name, -rc, context);
}

}  // namespace

std::string sev_command_name(std::uint32_t id) {
  static const char* const kNames[] = {
      "KVM_SEV_INIT",
      "KVM_SEV_ES_INIT",
      "KVM_SEV_LAUNCH_START",
      "KVM_SEV_LAUNCH_UPDATE_DATA",
      "KVM_SEV_LAUNCH_UPDATE_VMSA",
      "KVM_SEV_LAUNCH_SECRET",
      "KVM_SEV_LAUNCH_MEASURE",
      "KVM_SEV_LAUNCH_FINISH",
      "KVM_SEV_SEND_START",
      "KVM_SEV_SEND_UPDATE_DATA",
      "KVM_SEV_SEND_UPDATE_VMSA",
      "KVM_SEV_SEND_FINISH",
      "KVM_SEV_RECEIVE_START",
      "KVM_SEV_RECEIVE_UPDATE_DATA",
      "KVM_SEV_RECEIVE_UPDATE_VMSA",
      "KVM_SEV_RECEIVE_FINISH",
      "KVM_SEV_GUEST_STATUS",
      "KVM_SEV_DBG_DECRYPT",
      "KVM_SEV_DBG_ENCRYPT",
      "KVM_SEV_CERT_EXPORT",
      "KVM_SEV_GET_ATTESTATION_REPORT",
      "KVM_SEV_SEND_CANCEL",
      "KVM_SEV_INIT2",
  };
  static const char* const kSnpNames[] = {
      "KVM_SEV_SNP_LAUNCH_START",
      "KVM_SEV_SNP_LAUNCH_UPDATE",
      "KVM_SEV_SNP_LAUNCH_FINISH",
      "KVM_SEV_SNP_ENABLE_REQ_CERTS",
  };
  constexpr std::uint32_t kSnpFirst = 100;             // KVM_SEV_SNP_LAUNCH_START
#if defined(KVM_ABI_HAS_KVM_SEV_SNP_ENABLE_REQ_CERTS)  // the commands listed here
  static_assert(std::size(kNames) == abi::consts::SevInit2 + 1);
  static_assert(kSnpFirst == abi::consts::SevSnpLaunchStart);
  static_assert(std::size(kSnpNames) == abi::consts::SevNrMax - kSnpFirst);
#endif
  if (id < std::size(kNames)) return kNames[id];
  if (id >= kSnpFirst && id < kSnpFirst + std::size(kSnpNames)) return kSnpNames[id - kSnpFirst];
  return "SEV command " + std::to_string(id);
}

std::string tdx_command_name(std::uint32_t id) {
  static const char* const kNames[] = {
      "KVM_TDX_CAPABILITIES",    "KVM_TDX_INIT_VM",     "KVM_TDX_INIT_VCPU",
      "KVM_TDX_INIT_MEM_REGION", "KVM_TDX_FINALIZE_VM", "KVM_TDX_GET_CPUID",
  };
#if defined(KVM_ABI_HAS_KVM_TDX_CMD_NR_MAX)
  static_assert(std::size(kNames) == abi::consts::TdxCmdNrMax);
#endif
  if (id < std::size(kNames)) return kNames[id];
  return "TDX command " + std::to_string(id);
}

void Vm::memory_encrypt_op(abi::kvm_sev_cmd& cmd) const {
  int rc = encrypt_op(fd(), &cmd);
  if (rc >= 0) return;
  std::string context = sev_command_name(cmd.id);
  if (cmd.error) context += ": firmware error " + hex(cmd.error);
  if (not_confidential(-rc)) context += missing_type(fd(), kSevTypes, "SEV, SEV-ES or SNP");
  throw_error(kEncryptOp, -rc, context);
}

#if defined(KVM_ABI_HAS_KVM_X86_TDX_VM)
void Vm::memory_encrypt_op(abi::kvm_tdx_cmd& cmd) const { tdx_op(fd(), fd(), cmd); }

void Vcpu::memory_encrypt_op(abi::kvm_tdx_cmd& cmd) const { tdx_op(fd(), -1, cmd); }

#endif

void Vm::register_encrypted_region(std::span<std::uint8_t> host) const {
  enc_region_op<abi::ioctl::MemoryEncryptRegRegion>(*this, host);
}

void Vm::unregister_encrypted_region(std::span<std::uint8_t> host) const {
  enc_region_op<abi::ioctl::MemoryEncryptUnregRegion>(*this, host);
}
#endif

}  // namespace kvm

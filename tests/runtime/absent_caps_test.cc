// Features this host's KVM lacks (nested state, memory attributes, pre-faulting, confidential
// VMs): each named method exists and, where the capability reads 0, fails with an error that
// names the capability; the kernel's own refusal confirms the host really lacks it. Where a
// host has the feature, the same tests exercise it instead.
#include <catch2/catch.hpp>

#include <cerrno>

#include "guest.h"
#include "kvm/pre_fault.h"

namespace abi = kvm::abi;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kvm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("nested state: a size-checked buffer, refused naming KVM_CAP_NESTED_STATE where 0") {
  CHECK_THAT(error_of([] { kvm::NestedState tiny(64); }),
             Catch::Contains("64 bytes cannot hold struct kvm_nested_state (128 bytes)"));
  kvm::NestedState state(4096);
  CHECK(state.header().size == 4096);
  CHECK(state.bytes().size() == 4096);
  state.header().size = 8192;
  CHECK_THAT(error_of([&] { (void)state.bytes(); }),
             Catch::Contains("header size 8192 is outside 128 .. the buffer's 4096 bytes"));

  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  // The header is checked before the host is asked.
  CHECK_THAT(error_of([&] { vcpu.set_nested_state(state); }),
             Catch::Contains("kvm::NestedState: Invalid argument (header size 8192"));
  state.header().size = 4096;
  const int max = sys.check_extension(abi::Cap::NestedState);
  if (max > 0) {
    kvm::NestedState saved = vcpu.nested_state();
    CHECK(saved.capacity() == static_cast<std::size_t>(max));
    vcpu.set_nested_state(saved);
    return;
  }
  CHECK(error_of([&] { vcpu.nested_state(); }) ==
        "KVM_GET_NESTED_STATE: Invalid argument (KVM_CAP_NESTED_STATE is not supported here (it "
        "reads 0): the host keeps no nested virtualization state)");
  CHECK_THAT(error_of([&] { vcpu.set_nested_state(state); }),
             Catch::StartsWith("KVM_SET_NESTED_STATE: Invalid argument (KVM_CAP_NESTED_STATE is "
                               "not supported here"));
  CHECK(vcpu.try_ioctl<abi::ioctl::GetNestedState>(state.header()) < 0);
}

TEST_CASE("memory attributes: range checked, refused naming KVM_CAP_MEMORY_ATTRIBUTES where 0") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  CHECK(error_of([&] { vm.set_memory_attributes(0x1800, 0x1000, 0); }) ==
        "KVM_SET_MEMORY_ATTRIBUTES: Invalid argument ([0x1800, 0x2800) is not a non-empty, 4 "
        "KiB aligned range of guest addresses)");
  const auto offered = static_cast<std::uint64_t>(vm.check_extension(abi::Cap::MemoryAttributes));
  const std::uint64_t priv = abi::consts::MemoryAttributePrivate;
  if (offered != 0) {
    CHECK_THAT(error_of([&] { vm.set_memory_attributes(0, 0x1000, ~offered & 0xff); }),
               Catch::Contains("not among KVM_CAP_MEMORY_ATTRIBUTES"));
    vm.set_memory_attributes(0, 0x1000, 0);
    return;
  }
  CHECK(error_of([&] { vm.set_memory_attributes(0, 0x1000, priv); }) ==
        "KVM_SET_MEMORY_ATTRIBUTES: Invalid argument ([0x0, 0x1000): KVM_CAP_MEMORY_ATTRIBUTES is "
        "not supported here (it reads 0))");
  abi::kvm_memory_attributes raw{0, 0x1000, priv, 0};
  CHECK(vm.try_ioctl<abi::ioctl::SetMemoryAttributes>(raw) < 0);  // the kernel agrees
}

TEST_CASE("pre-faulting: refused naming KVM_CAP_PRE_FAULT_MEMORY where the host lacks it") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemory mem;
  mem.add(vm, 0, 0x10000);
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  CHECK_THAT(error_of([&] { vcpu.pre_fault_memory(0x10, 0x1000); }),
             Catch::Contains("[0x10, 0x1010) is not a non-empty, 4 KiB aligned range"));
  if (vm.check_extension(abi::Cap::PreFaultMemory) > 0) {
    CHECK(vcpu.pre_fault_memory(0, 0x10000) == 0x10000);
    return;
  }
  CHECK_THAT(error_of([&] { vcpu.pre_fault_memory(0, 0x4000); }),
             Catch::StartsWith("KVM_PRE_FAULT_MEMORY: ") &&
                 Catch::EndsWith("([0x0, 0x4000): 0x0 of 0x4000 bytes were pre-faulted before "
                                 "the failure; KVM_CAP_PRE_FAULT_MEMORY is not supported here)"));
}

TEST_CASE("pre-faulting: partial progress is resumed after EINTR/EAGAIN and reported on failure") {
  // A stand-in for the kernel: does `step` bytes per call, answering with `answers` in turn.
  struct FakeKernel {
    std::uint64_t step;
    std::vector<int> answers;
    std::size_t calls = 0;
    int operator()(abi::kvm_pre_fault_memory& arg) {
      int rc = answers.at(calls++);
      if (rc != -EFAULT) {
        std::uint64_t n = std::min(step, arg.size);
        arg.gpa += n;
        arg.size -= n;
      }
      return rc;
    }
  };
  FakeKernel resumable{0x1000, {-EINTR, -EAGAIN, 0, 0}};
  CHECK(kvm::detail::pre_fault_loop(0x100000, 0x4000, -1, resumable) == 0x4000);
  CHECK(resumable.calls == 4);

  kvm::System sys;
  FakeKernel failing{0x1000, {-EINTR, 0, -EFAULT}};
  CHECK(error_of([&] { kvm::detail::pre_fault_loop(0x100000, 0x4000, sys.fd(), failing); }) ==
        "KVM_PRE_FAULT_MEMORY: Bad address ([0x100000, 0x104000): 0x2000 of 0x4000 bytes were "
        "pre-faulted before the failure)");
}

TEST_CASE("confidential VMs: KVM_MEMORY_ENCRYPT_OP and encrypted regions name what is missing") {
  CHECK(kvm::sev_command_name(abi::consts::SevInit2) == "KVM_SEV_INIT2");
  CHECK(kvm::sev_command_name(abi::consts::SevSnpLaunchUpdate) == "KVM_SEV_SNP_LAUNCH_UPDATE");
  CHECK(kvm::sev_command_name(50) == "SEV command 50");
  CHECK(kvm::tdx_command_name(abi::consts::TdxInitVcpu) == "KVM_TDX_INIT_VCPU");
  CHECK(kvm::tdx_command_name(6) == "TDX command 6");

  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  const int offered = sys.check_extension(abi::Cap::VmTypes);
  const int sev_types =
      1 << abi::consts::X86SevVm | 1 << abi::consts::X86SevEsVm | 1 << abi::consts::X86SnpVm;
  if (offered < 0 || (offered & (sev_types | 1 << abi::consts::X86TdxVm)))
    KVM_TEST_SKIP("this host offers a confidential VM type; a default VM proves nothing here");
  const std::string types =
      "(KVM_CAP_VM_TYPES = 0x" + (std::ostringstream() << std::hex << offered).str() + "))";

  abi::kvm_sev_init init{};
  abi::kvm_sev_cmd sev{};
  sev.id = abi::consts::SevInit2;
  sev.data = reinterpret_cast<std::uint64_t>(&init);
  CHECK_THAT(error_of([&] { vm.memory_encrypt_op(sev); }),
             Catch::StartsWith("KVM_MEMORY_ENCRYPT_OP: ") &&
                 Catch::EndsWith("(KVM_SEV_INIT2; this host offers no SEV, SEV-ES or SNP VM type " +
                                 types));
  abi::kvm_tdx_cmd tdx{};
  tdx.id = abi::consts::TdxInitVm;
  CHECK_THAT(error_of([&] { vm.memory_encrypt_op(tdx); }),
             Catch::EndsWith("(KVM_TDX_INIT_VM; this host offers no TDX VM type " + types));
  tdx.id = abi::consts::TdxInitVcpu;
  CHECK_THAT(error_of([&] { vcpu.memory_encrypt_op(tdx); }),
             Catch::StartsWith("KVM_MEMORY_ENCRYPT_OP: ") &&
                 Catch::EndsWith("(KVM_TDX_INIT_VCPU; this host offers no TDX VM type " + types));

  kvm::HostMapping host(0x2000);
  CHECK_THAT(error_of([&] { vm.register_encrypted_region(host.bytes()); }),
             Catch::StartsWith("KVM_MEMORY_ENCRYPT_REG_REGION: ") &&
                 Catch::EndsWith("; this host offers no SEV, SEV-ES or SNP VM type " + types));
  CHECK_THAT(error_of([&] { vm.unregister_encrypted_region(host.bytes()); }),
             Catch::StartsWith("KVM_MEMORY_ENCRYPT_UNREG_REGION: ") &&
                 Catch::Contains("0x2000 bytes at host address"));
  CHECK(error_of([&] { vm.register_encrypted_region({}); }) ==
        "KVM_MEMORY_ENCRYPT_REG_REGION: Invalid argument (an empty region)");
}

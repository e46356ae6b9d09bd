// VM types: System::create_vm(VmType) checks the type against KVM_CAP_VM_TYPES before the
// kernel sees it. This host offers only the default type; the others get a clear error,
// which the kernel's own refusal confirms.
#include <catch2/catch.hpp>

#include "guest.h"

namespace abi = kvm::abi;
using kvm::VmType;
using kvm::X86VmType;

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

TEST_CASE("VM types: the default type, implicit or named, creates a working VM") {
  kvm::System sys;
  int offered = sys.check_extension(abi::Cap::VmTypes);
  if (offered > 0) CHECK((offered & 1) == 1);  // KVM_X86_DEFAULT_VM is always there
  kvm::Vm vm = sys.create_vm(VmType(X86VmType::Default));
  CHECK(vm.create_vcpu(0).id() == 0);
  CHECK(VmType().is_default());
  CHECK(VmType(X86VmType::Snp).name() == "KVM_X86_SNP_VM");
  CHECK(VmType::raw(9).name() == "machine type 9");
}

TEST_CASE("VM types: a type the host does not offer is refused, naming KVM_CAP_VM_TYPES") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::VmTypes);
  const int offered = sys.check_extension(abi::Cap::VmTypes);
  const X86VmType types[] = {X86VmType::SwProtected, X86VmType::Sev, X86VmType::SevEs,
                             X86VmType::Snp, X86VmType::Tdx};
  int refused = 0;
  for (X86VmType t : types) {
    VmType type(t);
    INFO(type.name());
    if (offered & (1 << type.value())) {
      CHECK(sys.create_vm(type).fd() >= 0);  // offered: it works
      continue;
    }
    ++refused;
    CHECK(error_of([&] { sys.create_vm(type); }) ==
          "KVM_CREATE_VM: Invalid argument (" + type.name() +
              " is not among the VM types this host offers: KVM_CAP_VM_TYPES = 0x" +
              (std::ostringstream() << std::hex << offered).str() +
              (offered == 1 ? " (KVM_X86_DEFAULT_VM))" : ""));
    int fd = sys.try_ioctl<abi::ioctl::CreateVm>(type.value());
    CHECK(fd < 0);  // the kernel refuses it too
    if (fd >= 0) ::close(fd);
  }
  if (offered == 1) CHECK(refused == 5);
  CHECK_THAT(error_of([&] { sys.create_vm(VmType::raw(40)); }),
             Catch::Contains("machine type 40 is not among the VM types this host offers"));
}

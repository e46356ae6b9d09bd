// Features this host's KVM lacks (nested state, memory attributes, pre-faulting, confidential
// VMs): each named method exists and, where the capability reads 0, fails with an error that
// names the capability; the kernel's own refusal confirms the host really lacks it. Where a
// host has the feature, the same tests exercise it instead.
#include <catch2/catch.hpp>

#include <cerrno>

#include "guest.h"

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

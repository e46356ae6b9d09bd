// arm64-only vCPU and VM methods beyond KVM_ARM_VCPU_INIT: vCPU finalization (SVE), vCPU
// events, guest debug, and the legacy in-kernel GICv2.
#include <string>

#include "kvm/vcpu.h"
#include "kvm/vm.h"

namespace kvm {

#if defined(__aarch64__)
void Vcpu::arm_vcpu_finalize(int feature) const {
  std::int32_t f = feature;
  ioctl<abi::ioctl::ArmVcpuFinalize>(f, feature == abi::consts::ArmVcpuSve
                                            ? "KVM_ARM_VCPU_SVE"
                                            : "feature " + std::to_string(feature));
}

abi::kvm_vcpu_events Vcpu::vcpu_events() const {
  return detail::get_struct<abi::ioctl::GetVcpuEvents>(*this);
}

void Vcpu::set_vcpu_events(const abi::kvm_vcpu_events& events) const {
  detail::set_struct<abi::ioctl::SetVcpuEvents>(*this, events);
}

void Vcpu::set_guest_debug(const abi::kvm_guest_debug& dbg) const {
  detail::set_struct<abi::ioctl::SetGuestDebug>(*this, dbg);
}

void Vm::create_irqchip() const { ioctl<abi::ioctl::CreateIrqchip>(); }
#endif

}  // namespace kvm

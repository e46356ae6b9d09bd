// kvm::Device: an in-kernel device created with KVM_CREATE_DEVICE, configured through
// device attributes.
#pragma once

#include <cstdint>

#include "kvm/abi/kvm_abi.h"
#include "kvm/fd.h"
#include "kvm/ioctl.h"

namespace kvm {

class Device : public IoctlTarget<Device, abi::Scope::Device> {
 public:
  Device(Fd fd, abi::DeviceType type) noexcept : fd_(std::move(fd)), type_(type) {}

  int fd() const noexcept { return fd_.get(); }
  abi::DeviceType type() const noexcept { return type_; }

  // KVM_HAS_DEVICE_ATTR: whether the device implements (group, attr).
  bool has_attr(std::uint32_t group, std::uint64_t attr) const;
  // KVM_GET_DEVICE_ATTR / KVM_SET_DEVICE_ATTR: `value` points at the attribute's data, whose
  // size the attribute defines.
  void get_attr(std::uint32_t group, std::uint64_t attr, void* value) const;
  void set_attr(std::uint32_t group, std::uint64_t attr, const void* value) const;

 private:
  Fd fd_;
  abi::DeviceType type_;
};

}  // namespace kvm

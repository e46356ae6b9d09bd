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

namespace detail {
// The attribute calls shared by Device, Vm and Vcpu.
template <class Target>
bool has_attr(const Target& t, std::uint32_t group, std::uint64_t attr) {
  abi::kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  int r = t.template try_ioctl<abi::ioctl::HasDeviceAttr>(a);
  if (r == -ENXIO) return false;
  if (r < 0)
    throw_error("KVM_HAS_DEVICE_ATTR", -r,
                "group " + std::to_string(group) + ", attr " + std::to_string(attr));
  return true;
}
template <class Target>
void get_attr(const Target& t, std::uint32_t group, std::uint64_t attr, void* value) {
  abi::kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = reinterpret_cast<std::uint64_t>(value);
  t.template ioctl<abi::ioctl::GetDeviceAttr>(
      a, "group " + std::to_string(group) + ", attr " + std::to_string(attr));
}
template <class Target>
void set_attr(const Target& t, std::uint32_t group, std::uint64_t attr, const void* value) {
  abi::kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = reinterpret_cast<std::uint64_t>(value);
  t.template ioctl<abi::ioctl::SetDeviceAttr>(
      a, "group " + std::to_string(group) + ", attr " + std::to_string(attr));
}
}  // namespace detail

inline bool Device::has_attr(std::uint32_t group, std::uint64_t attr) const {
  return detail::has_attr(*this, group, attr);
}
inline void Device::get_attr(std::uint32_t group, std::uint64_t attr, void* value) const {
  detail::get_attr(*this, group, attr, value);
}
inline void Device::set_attr(std::uint32_t group, std::uint64_t attr, const void* value) const {
  detail::set_attr(*this, group, attr, value);
}

}  // namespace kvm

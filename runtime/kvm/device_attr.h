// The device-attribute calls (KVM_HAS/GET/SET_DEVICE_ATTR) that Device, Vm and Vcpu share.
// Only the runtime's sources include this: written inline in device.h, the three templates
// cost every includer of kvm/kvm.h their instantiation.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>

#include "kvm/abi/kvm_abi.h"
#include "kvm/error.h"

namespace kvm {

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

}  // namespace kvm

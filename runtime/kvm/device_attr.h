// The device-attribute calls (KVM_HAS/GET/SET_DEVICE_ATTR) that Device, Vm and Vcpu share.
// Only the runtime's sources include this: written inline in device.h, the templates cost
// every includer of kvm/kvm.h their instantiation.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>

#include "kvm/abi/kvm_abi.h"
#include "kvm/error.h"

namespace kvm::detail {

inline abi::kvm_device_attr device_attr(std::uint32_t group, std::uint64_t attr,
                                        const void* value) {
  abi::kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = reinterpret_cast<std::uint64_t>(value);
  return a;
}

// "group 6, attr 0", the context of every attribute call's error.
inline std::string describe_attr(std::uint32_t group, std::uint64_t attr) {
  return "group " + std::to_string(group) + ", attr " + std::to_string(attr);
}

template <class Target>
bool has_attr(const Target& t, std::uint32_t group, std::uint64_t attr) {
  abi::kvm_device_attr a = device_attr(group, attr, nullptr);
  int r = t.template try_ioctl<abi::ioctl::HasDeviceAttr>(a);
  if (r == -ENXIO) return false;
  if (r < 0) throw_error("KVM_HAS_DEVICE_ATTR", -r, describe_attr(group, attr));
  return true;
}

// KVM_GET_DEVICE_ATTR or KVM_SET_DEVICE_ATTR (Io): the kernel reads or writes *value.
template <class Io, class Target>
void access_attr(const Target& t, std::uint32_t group, std::uint64_t attr, const void* value) {
  abi::kvm_device_attr a = device_attr(group, attr, value);
  t.template ioctl<Io>(a, describe_attr(group, attr));
}

template <class Target>
void get_attr(const Target& t, std::uint32_t group, std::uint64_t attr, void* value) {
  access_attr<abi::ioctl::GetDeviceAttr>(t, group, attr, value);
}
template <class Target>
void set_attr(const Target& t, std::uint32_t group, std::uint64_t attr, const void* value) {
  access_attr<abi::ioctl::SetDeviceAttr>(t, group, attr, value);
}

}  // namespace kvm::detail

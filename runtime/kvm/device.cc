#include "kvm/device.h"

#include "kvm/device_attr.h"

namespace kvm {

bool Device::has_attr(std::uint32_t group, std::uint64_t attr) const {
  return detail::has_attr(*this, group, attr);
}

void Device::get_attr(std::uint32_t group, std::uint64_t attr, void* value) const {
  detail::get_attr(*this, group, attr, value);
}

void Device::set_attr(std::uint32_t group, std::uint64_t attr, const void* value) const {
  detail::set_attr(*this, group, attr, value);
}

}  // namespace kvm

// KVM_GET_ONE_REG / KVM_SET_ONE_REG with a buffer checked against the size the register id
// encodes (KVM_REG_SIZE_*), on every arch the runtime is written for.
#include <cerrno>
#include <sstream>
#include <string>

#include "kvm/vcpu.h"

namespace kvm {
namespace {

std::string describe(std::uint64_t id) {
  std::ostringstream os;
  os << "register id 0x" << std::hex << id;
  return os.str();
}

void check_size(const char* ioctl_name, std::uint64_t id, std::size_t have) {
  std::size_t want = one_reg_size(id);
  if (have != want) {
    throw Error(ioctl_name, EINVAL,
                describe(id) + " holds " + std::to_string(want) +
                    " bytes (its KVM_REG_SIZE), not " + std::to_string(have));
  }
}

}  // namespace

std::size_t one_reg_size(std::uint64_t id) noexcept {
  // bytes = 1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT): 1 up to 256 (U2048).
  return std::size_t{1} << ((id & abi::consts::RegSizeMask) >> abi::consts::RegSizeShift);
}

void Vcpu::get_one_reg(std::uint64_t id, std::span<std::uint8_t> value) const {
  check_size("KVM_GET_ONE_REG", id, value.size());
  abi::kvm_one_reg r{};
  r.id = id;
  r.addr = reinterpret_cast<std::uint64_t>(value.data());
  ioctl<abi::ioctl::GetOneReg>(r, describe(id));
}

void Vcpu::set_one_reg(std::uint64_t id, std::span<const std::uint8_t> value) const {
  check_size("KVM_SET_ONE_REG", id, value.size());
  abi::kvm_one_reg r{};
  r.id = id;
  r.addr = reinterpret_cast<std::uint64_t>(value.data());
  ioctl<abi::ioctl::SetOneReg>(r, describe(id));
}

}  // namespace kvm

#include "kvm/msr_filter.h"

#include <cerrno>
#include <sstream>
#include <string>

#include "kvm/error.h"
#include "kvm/vm.h"

namespace kvm {

#if defined(__x86_64__)
namespace {

constexpr const char* kSetFilter = "KVM_X86_SET_MSR_FILTER";
constexpr std::size_t kMaxRanges = abi::consts::MsrFilterMaxRanges;
constexpr std::size_t kMaxBitmap = abi::consts::MsrFilterMaxBitmapSize;

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

void check_range(std::size_t index, MsrFilter::Access access, std::uint32_t base,
                 std::uint32_t count, std::size_t bitmap_bytes) {
  const std::string what = "range " + std::to_string(index) + " (MSRs " + hex(base) + " + " +
                           std::to_string(count) + ")";
  if (index >= kMaxRanges) {
    throw Error(kSetFilter, EINVAL,
                what + ": more than KVM_MSR_FILTER_MAX_RANGES " + std::to_string(kMaxRanges));
  }
  const auto flags = abi::to_underlying(access);
  const auto valid = abi::to_underlying(MsrFilter::Access::Read | MsrFilter::Access::Write);
  if (flags == 0 || (flags & ~valid)) {
    throw Error(kSetFilter, EINVAL,
                what + ": access flags " + hex(flags) +
                    " are not KVM_MSR_FILTER_READ and/or KVM_MSR_FILTER_WRITE");
  }
  if (count == 0) throw Error(kSetFilter, EINVAL, what + ": no MSRs");
  if (std::uint64_t{base} + count > std::uint64_t{1} << 32) {
    throw Error(kSetFilter, EINVAL, what + ": ends past MSR 0xffffffff");
  }
  const std::size_t want = (std::size_t{count} + 7) / 8;
  if (want > kMaxBitmap) {
    throw Error(kSetFilter, EINVAL,
                what + ": a bitmap of " + std::to_string(want) +
                    " bytes exceeds KVM_MSR_FILTER_MAX_BITMAP_SIZE " + std::to_string(kMaxBitmap));
  }
  if (bitmap_bytes != want) {
    throw Error(kSetFilter, EINVAL,
                what + ": bitmap of " + std::to_string(bitmap_bytes) + " bytes, needs " +
                    std::to_string(want));
  }
}

}  // namespace

MsrFilter::MsrFilter(abi::MsrFilterDefault default_action) : default_action_(default_action) {
  if (abi::to_underlying(default_action) & ~abi::to_underlying(abi::MsrFilterDefault::Deny)) {
    throw Error(kSetFilter, EINVAL,
                "filter flags " + hex(abi::to_underlying(default_action)) +
                    " are not KVM_MSR_FILTER_DEFAULT_ALLOW or KVM_MSR_FILTER_DEFAULT_DENY");
  }
}

MsrFilter& MsrFilter::add_range(Access access, std::uint32_t base, std::uint32_t count,
                                std::span<const std::uint8_t> bitmap) {
  check_range(ranges_.size(), access, base, count, bitmap.size());
  ranges_.push_back(Range{access, base, count, {bitmap.begin(), bitmap.end()}});
  return *this;
}

MsrFilter& MsrFilter::deny(Access access, std::uint32_t base, std::uint32_t count) {
  std::vector<std::uint8_t> zeros((std::size_t{count} + 7) / 8, 0);
  return add_range(access, base, count, zeros);
}

MsrFilter& MsrFilter::allow(Access access, std::uint32_t base, std::uint32_t count) {
  std::vector<std::uint8_t> ones((std::size_t{count} + 7) / 8, 0xff);
  return add_range(access, base, count, ones);
}

abi::kvm_msr_filter MsrFilter::to_kernel() const {
  abi::kvm_msr_filter f{};
  f.flags = abi::to_underlying(default_action_);
  for (std::size_t i = 0; i < ranges_.size(); ++i) {
    f.ranges[i].flags = abi::to_underlying(ranges_[i].access);
    f.ranges[i].base = ranges_[i].base;
    f.ranges[i].nmsrs = ranges_[i].count;
    // The kernel only reads the bitmap.
    f.ranges[i].bitmap = const_cast<std::uint8_t*>(ranges_[i].bitmap.data());
  }
  return f;
}

void Vm::set_msr_filter(const MsrFilter& filter) const {
  abi::kvm_msr_filter f = filter.to_kernel();
  ioctl<abi::ioctl::X86SetMsrFilter>(f, std::to_string(filter.ranges()) + " ranges");
}
#endif

}  // namespace kvm

#include "kvm/pre_fault.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <sstream>
#include <string>

#include "kvm/error.h"
#include "kvm/ioctl.h"
#include "kvm/vcpu.h"

namespace kvm {
#if defined(KVM_ABI_HAS_KVM_PRE_FAULT_MEMORY)
namespace {

constexpr const char* kPreFault = "KVM_PRE_FAULT_MEMORY";
constexpr std::uint64_t kPageSize = 4096;

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

std::string range(std::uint64_t gpa, std::uint64_t size) {
  return "[" + hex(gpa) + ", " + hex(gpa + size) + ")";
}

}  // namespace

namespace detail {

std::uint64_t pre_fault_loop(std::uint64_t gpa, std::uint64_t size, int check_fd,
                             FunctionRef<int(abi::kvm_pre_fault_memory&)> issue) {
  if (size == 0 || gpa % kPageSize || size % kPageSize || gpa + size < gpa) {
    throw Error(kPreFault, EINVAL,
                range(gpa, size) + " is not a non-empty, 4 KiB aligned range of guest addresses");
  }
  abi::kvm_pre_fault_memory arg{};
  arg.gpa = gpa;
  arg.size = size;
  for (;;) {
    int rc = issue(arg);
    if (rc == 0 && arg.size == 0) return size;
    if (rc == 0 || rc == -EINTR || rc == -EAGAIN) continue;  // the kernel left the rest for us
    const std::uint64_t done = size - arg.size;
    const std::string context = range(gpa, size) + ": " + hex(done) + " of " + hex(size) +
                                " bytes were pre-faulted before the failure";
    throw_gated_error(kPreFault, -rc, context, check_fd,
                      abi::to_underlying(abi::Cap::PreFaultMemory), "KVM_CAP_PRE_FAULT_MEMORY");
  }
}

}  // namespace detail

std::uint64_t Vcpu::pre_fault_memory(std::uint64_t gpa, std::uint64_t size) const {
  return detail::pre_fault_loop(gpa, size, -1, [this](abi::kvm_pre_fault_memory& arg) {
    // One try per call: the loop, not raw_ioctl's EINTR retry, resumes the range.
    int r = ::ioctl(fd(), static_cast<unsigned long>(abi::ioctl::PreFaultMemory::request), &arg);
    return r < 0 ? -errno : r;
  });
}
#endif

}  // namespace kvm

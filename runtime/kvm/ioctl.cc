#include "kvm/ioctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace kvm::detail {
namespace {

// Errnos with which KVM turns down an ioctl it does not implement or has not enabled.
bool means_unsupported(int err) noexcept {
  return err == ENOTTY || err == EINVAL || err == ENXIO || err == EOPNOTSUPP || err == ENOSYS;
}

}  // namespace

// KVM_CHECK_EXTENSION(cap) on `fd`, or on a /dev/kvm opened for the question when fd < 0.
// -1 when the question cannot be asked (no /dev/kvm, say).
int check_extension(int fd, unsigned cap) noexcept {
  int own = -1;
  if (fd < 0) {
    own = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (own < 0) return -1;
    fd = own;
  }
  int r = raw_ioctl(fd, abi::ioctl::CheckExtension::request, cap);
  if (own >= 0) ::close(own);
  return r < 0 ? -1 : r;
}

void throw_gated_error(std::string_view ioctl_name, int err, std::string_view context, int check_fd,
                       unsigned cap, std::string_view cap_name) {
  if (means_unsupported(err) && check_extension(check_fd, cap) == 0) {
    std::string why(context);
    if (!why.empty()) why += "; ";
    why += cap_name.empty() ? "cap " + std::to_string(cap) : std::string(cap_name);
    why += " is not supported here";
    throw_error(ioctl_name, err, why);
  }
  throw_error(ioctl_name, err, context);
}

}  // namespace kvm::detail

// The one error type of the runtime. Every failing ioctl throws kvm::Error carrying the
// ioctl's name, errno, and what we know about the call, formatted as
//   KVM_CREATE_VCPU: Invalid argument (vcpu id 5000 >= KVM_CAP_MAX_VCPU_ID 4096)
// Input the runtime rejects before asking the kernel throws the same type with errno EINVAL
// (or the errno the kernel would have used), so callers handle one type.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace kvm {

class Error : public std::system_error {
 public:
  Error(std::string_view operation, int err, std::string_view context = {});

  // The ioctl or operation that failed, e.g. "KVM_SET_USER_MEMORY_REGION".
  const std::string& operation() const noexcept { return operation_; }
  // The errno value (EINVAL, EEXIST, ...).
  int errno_value() const noexcept { return code().value(); }
  // Our explanation, possibly empty.
  const std::string& context() const noexcept { return context_; }
  // "OPERATION: strerror (context)" — without the suffix std::system_error would add.
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
  std::string operation_;
  std::string context_;
};

// Asking an exit for data of another exit reason (e.g. io() on an MMIO exit), or for any data
// of an interrupted run. A logic error of the caller, never undefined behaviour.
class WrongExitError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Exit data that cannot be valid, whoever wrote it into the shared kvm_run page (a buggy or
// newer kernel, or anything else with the vCPU mapped): an IO access size other than 1, 2 or 4,
// IO data outside the mapping, an MMIO length over 8, an instruction longer than the 15 bytes
// x86 allows. Not the caller's mistake (that is WrongExitError): the exit cannot be decoded.
class ExitDataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_error(std::string_view operation, int err, std::string_view context = {});

}  // namespace kvm

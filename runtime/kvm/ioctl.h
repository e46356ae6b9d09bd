// The typed ioctl call: `handle.ioctl<abi::ioctl::GetRegs>(regs)`.
//
// Every ioctl of the generated model can be issued this way, checked at compile time:
//  - against its scope: a vCPU ioctl on a Vm does not compile;
//  - against its argument type: the argument must be an lvalue of exactly Io::arg_type
//    (ioctls with no pointer argument take an optional integer instead);
//  - against availability: ioctls whose argument type this arch lacks, and the header's
//    deprecated aliases, are rejected.
// A misused call fails with one sentence naming the ioctl, what it needs and, for a scope
// error, the handle to call it on (ioctl_misuse.h), e.g. "KVM_GET_REGS is a vCPU ioctl: call
// it on a kvm::Vcpu, not on a kvm::Vm"; a requires-expression sees such a call as invalid.
// Failures throw kvm::Error naming the ioctl. The named methods of System/Vm/Vcpu/Device are
// built on this and add validation and friendlier types.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <type_traits>

#include "kvm/abi/kvm_abi.h"
#include "kvm/abi/names.h"
#include "kvm/error.h"
#include "kvm/ioctl_misuse.h"

namespace kvm {

namespace detail {

// One raw ioctl, retried on EINTR (only KVM_RUN treats EINTR as a result; it does not use this).
inline int raw_ioctl(int fd, std::uint64_t request, unsigned long arg) noexcept {
  int r;
  do {
    r = ::ioctl(fd, static_cast<unsigned long>(request), arg);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

// KVM_CHECK_EXTENSION(cap) on `fd` (a system or VM fd), or on a /dev/kvm opened for the
// question when fd < 0; -1 when it cannot be asked.
int check_extension(int fd, unsigned cap) noexcept;

// The failure path of an ioctl gated by a capability (Io::capability): when the errno is one a
// kernel without the feature gives (ENOTTY, EINVAL, ENXIO, EOPNOTSUPP, ENOSYS) and
// KVM_CHECK_EXTENSION reports the capability absent, the error's context says so, e.g.
//   KVM_GET_NESTED_STATE: Invalid argument (KVM_CAP_NESTED_STATE is not supported here)
// `check_fd` answers KVM_CHECK_EXTENSION (a system or VM fd), or is -1 to ask a fresh
// /dev/kvm. Only runs after a failure, so a successful call costs nothing extra.
[[noreturn]] void throw_gated_error(std::string_view ioctl_name, int err, std::string_view context,
                                    int check_fd, unsigned cap, std::string_view cap_name);

}  // namespace detail

// Mixed into System, Vm, Vcpu and Device; `kScope` says which fd kind the handle is.
template <class Derived, abi::Scope kScope>
class IoctlTarget {
 public:
  static constexpr abi::Scope scope = kScope;

  // Issues Io with `args`: `ioctl<Io>(arg[, context])` for an ioctl with a pointer argument
  // (exactly an Io::arg_type lvalue), `ioctl<Io>([value[, context]])` for one without.
  // Returns the ioctl's non-negative result; failures throw kvm::Error naming the ioctl, with
  // `context` (and the gating capability, when the host lacks it) in the message.
  template <class Io, class... Args>
  requires detail::CallableWith<Io, kScope, true, Args...>
  int ioctl(Args&&... args) const { return call<Io>(args...); }
  // A misused call: kWhy says why (see ioctl_misuse.h).
  template <class Io, class... Args, auto kWhy = detail::misuse<Io, kScope, true, Args&&...>()>
  requires detail::NotCallableWith<Io, kScope, true, Args...>
  int ioctl(Args&&...) const = delete;

  // Whether this host offers Io on this kind of fd, as far as the capability that gates it
  // there says (abi::capability_on<Io>): false when that capability reads 0 (or cannot be
  // asked), true when it reads non-zero or no capability is known for Io. One
  // KVM_CHECK_EXTENSION (on /dev/kvm for vCPU and device handles), none when no capability is
  // known.
  template <class Io>
  requires UsableOn<Io, kScope>
  bool supports() const noexcept {
    if constexpr (constexpr abi::OptionalCap cap = abi::capability_on<Io>(kScope); cap.present) {
      return detail::check_extension(extension_fd(), abi::to_underlying(cap.value)) > 0;
    } else {
      return true;
    }
  }
  // A misused call: kWhy says why (see ioctl_misuse.h).
  template <class Io, auto kWhy = detail::misuse<Io, kScope, false>()>
  requires detail::NotUsableOn<Io, kScope>
  bool supports() const noexcept = delete;

  // Like ioctl() without a context, but returns -errno instead of throwing: for callers that
  // expect failures.
  template <class Io, class... Args>
  requires detail::CallableWith<Io, kScope, false, Args...>
  int try_ioctl(Args&&... args) const noexcept { return raw<Io>(args...); }
  // A misused call: kWhy says why (see ioctl_misuse.h).
  template <class Io, class... Args, auto kWhy = detail::misuse<Io, kScope, false, Args&&...>()>
  requires detail::NotCallableWith<Io, kScope, false, Args...>
  int try_ioctl(Args&&...) const noexcept = delete;

 private:
  // The raw request: the argument's address, or the integer (0 when none is given).
  template <class Io>
  int raw(typename Io::arg_type& arg) const noexcept {
    return detail::raw_ioctl(target_fd(), Io::request, reinterpret_cast<unsigned long>(&arg));
  }
  template <class Io, class... Value>
  int raw(const Value&... value) const noexcept {
    static_assert(sizeof...(Value) <= 1);
    return detail::raw_ioctl(target_fd(), Io::request,
                             (0ul | ... | static_cast<unsigned long>(value)));
  }
  template <class Io, class First, class... Context>
  int call(First& first, const Context&... context) const {
    return finish<Io>(raw<Io>(first), std::string_view(context...));
  }
  template <class Io>
  int call() const {
    return finish<Io>(raw<Io>(), {});
  }

  int target_fd() const noexcept { return static_cast<const Derived&>(*this).fd(); }
  // Where to ask KVM_CHECK_EXTENSION about this handle's ioctls: its own fd for system and VM
  // handles; vCPU and device fds do not answer it, so -1 (a fresh /dev/kvm).
  int extension_fd() const noexcept {
    return kScope == abi::Scope::System || kScope == abi::Scope::Vm ? target_fd() : -1;
  }

  template <class Io>
  int finish(int r, std::string_view context) const {
    if (r >= 0) return r;
    // abi::capability_on<Io>() answers for descriptors written by hand too (none known).
    if constexpr (constexpr abi::OptionalCap cap = abi::capability_on<Io>(kScope); cap.present) {
      detail::throw_gated_error(Io::name, -r, context, extension_fd(),
                                abi::to_underlying(cap.value), abi::to_string(cap.value));
    }
    throw_error(Io::name, -r, context);
  }
};

namespace detail {

// A "get" ioctl that fills a struct, and a "set" ioctl that takes a copy (the kernel's
// argument is not const), for the named methods of Vm and Vcpu.
template <class Io, class Target>
typename Io::arg_type get_struct(const Target& t) {
  typename Io::arg_type v{};
  t.template ioctl<Io>(v);
  return v;
}
template <class Io, class Target>
void set_struct(const Target& t, const typename Io::arg_type& value) {
  typename Io::arg_type v = value;
  t.template ioctl<Io>(v);
}

// KVM_ENABLE_CAP, shared by Vm and Vcpu: the cap's name (or number) is the error context.
template <class Target>
void enable_cap(const Target& t, abi::Cap cap, std::uint64_t a0, std::uint64_t a1, std::uint64_t a2,
                std::uint64_t a3, std::uint32_t flags) {
  abi::kvm_enable_cap c{};
  c.cap = abi::to_underlying(cap);
  c.flags = flags;
  c.args[0] = a0;
  c.args[1] = a1;
  c.args[2] = a2;
  c.args[3] = a3;
  std::string_view name = abi::to_string(cap);
  t.template ioctl<abi::ioctl::EnableCap>(
      c, name.empty() ? "cap " + std::to_string(c.cap) : std::string(name));
}

}  // namespace detail

}  // namespace kvm

// What a typed ioctl call (`handle.ioctl<Io>(args...)`, ioctl.h) accepts, and, for a call it
// does not, one sentence saying why, for the compiler to print.
//
// A misused call selects a deleted overload whose defaulted template argument kWhy holds that
// sentence; GCC prints it in its one error line:
//   error: use of deleted function '... [with Io = kvm::abi::ioctl::GetRegs; ...;
//     auto kWhy = kvm::detail::Why<52>{"KVM_GET_REGS is a vCPU ioctl: call it on a kvm::Vcpu,
//     not on a kvm::Vm"}]'
// (clang prints the same overload as "call to deleted member function 'ioctl'" with
// `Io = ...` and the scope check). Deleted, not a static_assert: a requires-expression still
// sees the call as invalid, so misuse stays detectable.
#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

#include "kvm/abi/kvm_abi.h"

namespace kvm {

template <class Io>
concept IoctlDescriptor = requires {
  Io::name;
  Io::request;
  Io::scopes;
  typename Io::arg_type;
};

// Io may be issued on an fd of kind `kScope`: it is usable on this arch and that fd kind is
// among its scopes.
template <class Io, abi::Scope kScope>
concept UsableOn =
    IoctlDescriptor<Io> && Io::available && !Io::deprecated && abi::has_scope(Io::scopes, kScope);

namespace detail {

// ---- the arguments a typed call takes ---------------------------------------------------
// An ioctl with a pointer argument takes exactly `Io::arg_type&` (a non-const lvalue: the
// kernel may write it); one without (_IO) takes nothing or an integer. With kContext, an
// optional context for the error message follows (anything a std::string_view is made from).
template <bool kContext, class... Rest>
constexpr bool context_fits() {
  if constexpr (sizeof...(Rest) == 0) {
    return true;
  } else {
    return kContext && sizeof...(Rest) == 1 &&
           (std::is_convertible_v<Rest, std::string_view> && ...);
  }
}

template <class T>
inline constexpr bool kIntegerLike = std::is_integral_v<std::remove_cvref_t<T>> ||
                                     (std::is_enum_v<std::remove_cvref_t<T>> &&
                                      std::is_convertible_v<T, unsigned long>);

template <class Io, bool kContext, class First, class... Rest>
constexpr bool some_args_fit() {
  if constexpr (std::is_void_v<typename Io::arg_type>)
    return kIntegerLike<First> && context_fits<kContext, Rest...>();
  else
    return std::is_same_v<First, typename Io::arg_type&> && context_fits<kContext, Rest...>();
}

template <class Io, bool kContext, class... Args>
constexpr bool args_fit() {
  if constexpr (sizeof...(Args) == 0)
    return std::is_void_v<typename Io::arg_type>;
  else
    return some_args_fit<Io, kContext, Args...>();
}

// A typed call of Io on a `kScope` handle with these arguments (as forwarded: T& for lvalues).
template <class Io, abi::Scope kScope, bool kContext, class... Args>
concept CallableWith = UsableOn<Io, kScope> && args_fit<Io, kContext, Args...>();

// Their negations, for the deleted overloads that catch misuse.
template <class Io, abi::Scope kScope, bool kContext, class... Args>
concept NotCallableWith = !CallableWith<Io, kScope, kContext, Args...>;
template <class Io, abi::Scope kScope>
concept NotUsableOn = !UsableOn<Io, kScope>;

// ---- the sentence ---------------------------------------------------------------------------
// A fixed-capacity string built at compile time.
struct Text {
  char buf[400] = {};
  std::size_t n = 0;
  constexpr Text& operator<<(std::string_view s) {
    for (char c : s)
      if (n + 1 < sizeof buf) buf[n++] = c;
    return *this;
  }
};

// What the compiler prints: exactly the sentence (a structural type, so it can be a template
// argument).
template <std::size_t N>
struct Why {
  char text[N];
};

// "kvm::abi::kvm_regs&", from the compiler's own spelling of the function's name.
template <class T>
constexpr std::string_view type_name() {
  std::string_view f = __PRETTY_FUNCTION__;  // "... [with T = X; ...]" (GCC), "[T = X]" (clang)
  std::size_t begin = f.find("T = ") + 4;
  std::size_t end = f.find_first_of(";]", begin);
  return f.substr(begin, end - begin);
}

constexpr void scope_words(Text& t, abi::Scope scopes, bool handles) {
  constexpr abi::Scope kAll[] = {abi::Scope::System, abi::Scope::Vm, abi::Scope::Vcpu,
                                 abi::Scope::Device};
  constexpr std::string_view kWords[] = {"system", "VM", "vCPU", "device"};
  constexpr std::string_view kHandles[] = {"a kvm::System", "a kvm::Vm", "a kvm::Vcpu",
                                           "a kvm::Device"};
  bool first = true;
  for (std::size_t i = 0; i < 4; ++i) {
    if (!abi::has_scope(scopes, kAll[i])) continue;
    if (!first) t << (handles ? " or " : " and ");
    t << (handles ? kHandles[i] : kWords[i]);
    first = false;
  }
}

constexpr std::string_view handle_of(abi::Scope one) {
  switch (one) {
    case abi::Scope::System:
      return "a kvm::System";
    case abi::Scope::Vm:
      return "a kvm::Vm";
    case abi::Scope::Vcpu:
      return "a kvm::Vcpu";
    default:
      return "a kvm::Device";
  }
}

template <class Io, abi::Scope kScope, bool kContext, class... Args>
constexpr Text misuse_text() {
  Text t;
  if constexpr (!IoctlDescriptor<Io>) {
    t << type_name<Io>() << " is not an ioctl descriptor (a struct with name, request, "
      << "scopes and arg_type, like kvm::abi::ioctl::GetRegs)";
  } else if constexpr (!Io::available) {
    t << Io::name << " is not available on this arch: its argument type is not defined here";
  } else if constexpr (Io::deprecated) {
    t << Io::name << " is a deprecated alias in the kernel headers: use the ioctl it aliases";
  } else if constexpr (!abi::has_scope(Io::scopes, kScope)) {
    t << Io::name << " is a ";
    scope_words(t, Io::scopes, false);
    t << " ioctl: call it on ";
    scope_words(t, Io::scopes, true);
    t << ", not on " << handle_of(kScope);
  } else {
    if constexpr (std::is_void_v<typename Io::arg_type>)
      t << Io::name << " takes no pointer: nothing or an integer";
    else
      t << Io::name << " takes a non-const lvalue of exactly "
        << type_name<typename Io::arg_type>();
    t << (kContext ? ", then an optional context string" : "") << "; given (";
    bool first = true;
    ((t << (first ? "" : ", ") << type_name<Args>(), first = false), ...);
    t << ")";
  }
  return t;
}

template <class Io, abi::Scope kScope, bool kContext, class... Args>
constexpr auto misuse() {
  constexpr Text t = misuse_text<Io, kScope, kContext, Args...>();
  Why<t.n + 1> why{};
  for (std::size_t i = 0; i < t.n; ++i) why.text[i] = t.buf[i];
  return why;
}

}  // namespace detail
}  // namespace kvm

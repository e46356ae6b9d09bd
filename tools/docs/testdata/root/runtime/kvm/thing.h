// Fixture runtime for tools/docs/runtime_scan.py: every way a method can reach an ioctl.
#pragma once

#include "kvm/abi/kvm_abi.h"

namespace kvm {

namespace detail {
// A helper outside the public API: what it issues counts for its callers.
template <class T>
int get_thing(const T& t);
}  // namespace detail

class Thing {
 public:
  int fd() const noexcept { return 3; }

  // KVM_GET_THING / KVM_SET_THING: the thing, read and written.
  int thing() const;
  void set_thing(int v);

  // KVM_GET_THING through a detail helper.
  int thing_via_helper() const;

  // KVM_RUN: runs, with the ioctl's request number used directly.
  int run();

  // Calls thing(), a public method: it does not wrap KVM_GET_THING itself.
  int twice() const;

  // KVM_GET/SET_THING both, in shorthand.
  void round_trip();

  // KVM_UNWRAPPED: this comment is wrong, the method issues KVM_GET_THING.
  int wrong_comment() const;

#if defined(__x86_64__)
  // KVM_X86_ONLY: exists only when built for x86_64.
  void x86_only();
#endif

  int undocumented() const;

 private:
  int private_get() const;
  int fd_ = 3;
};

// KVM_SET_THING from a free function of the API.
void set_thing_on(Thing& t);

}  // namespace kvm

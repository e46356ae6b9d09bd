// Fixture bindings: just the ioctl descriptor types the scanner looks for.
#pragma once
namespace kvm::abi {
namespace ioctl {
struct GetThing {};
struct SetThing {};
struct Run {
  static constexpr unsigned long request = 0xae80;
};
struct Unwrapped {};
}  // namespace ioctl
struct kvm_thing {
  unsigned a;
};
}  // namespace kvm::abi

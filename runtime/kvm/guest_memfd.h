// kvm::GuestMemfd: guest memory that KVM owns (KVM_CREATE_GUEST_MEMFD), as opposed to a host
// mapping lent to a slot. A slot takes a range of it through KVM_SET_USER_MEMORY_REGION2
// (MemoryRegion::guest_memfd). Created with GUEST_MEMFD_FLAG_MMAP it can also be mapped here,
// which is how GuestMemory::add_guest_memfd() gives bounds-checked access to it; with
// GUEST_MEMFD_FLAG_INIT_SHARED its pages start shared, so an ordinary guest can run from it.
#pragma once

#include <cstdint>

#include "kvm/fd.h"

namespace kvm {

class GuestMemfd {
 public:
  // Takes ownership of a guest_memfd fd of `size` bytes created with `flags`
  // (GUEST_MEMFD_FLAG_*). Vm::create_guest_memfd() is the usual way to get one.
  GuestMemfd(Fd fd, std::uint64_t size, std::uint64_t flags);

  int fd() const noexcept { return fd_.get(); }
  std::uint64_t size() const noexcept { return size_; }
  std::uint64_t flags() const noexcept { return flags_; }
  // Whether it was created with GUEST_MEMFD_FLAG_MMAP, so that mmap() works on it.
  bool mappable() const noexcept;
  // Whether its pages start shared with the host (GUEST_MEMFD_FLAG_INIT_SHARED).
  bool initially_shared() const noexcept;

 private:
  Fd fd_;
  std::uint64_t size_ = 0;
  std::uint64_t flags_ = 0;
};

}  // namespace kvm

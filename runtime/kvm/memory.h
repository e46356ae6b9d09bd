// Guest memory: host mappings registered as memory slots, with bounds-checked,
// overflow-safe access by guest-physical address. Every access either lies entirely inside
// one region or throws; no span ever crosses a region's end.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "kvm/abi/kvm_abi.h"
#include "kvm/error.h"

namespace kvm {

class Vm;
class GuestMemfd;

namespace detail {
template <class T>
concept TriviallyCopyable = std::is_trivially_copyable_v<T>;
}  // namespace detail

// An anonymous, private, zero-filled host mapping, or a shared mapping of a file range;
// unmapped on destruction.
class HostMapping {
 public:
  HostMapping() noexcept = default;
  explicit HostMapping(std::size_t size);
  // Maps [offset, offset + size) of `fd` shared, read-write (e.g. a mappable guest_memfd).
  // The mapping keeps the file alive after `fd` is closed.
  HostMapping(int fd, std::uint64_t offset, std::size_t size);
  HostMapping(HostMapping&& o) noexcept;
  HostMapping& operator=(HostMapping&& o) noexcept;
  HostMapping(const HostMapping&) = delete;
  HostMapping& operator=(const HostMapping&) = delete;
  ~HostMapping();

  std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::uint8_t> bytes() const noexcept;

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

class GuestMemory {
 public:
  struct Region {
    std::uint32_t slot;
    std::uint64_t guest_phys_addr;
    std::span<std::uint8_t> host;
    abi::MemoryFlags flags;
  };

  // Maps `size` bytes of fresh memory at `gpa` and registers it with `vm` in the next free
  // slot. Returns the host bytes.
  std::span<std::uint8_t> add(Vm& vm, std::uint64_t gpa, std::uint64_t size,
                              abi::MemoryFlags flags = {});
  // Registers memory the caller owns (and keeps mapped while the VM may use it).
  void add_borrowed(Vm& vm, std::uint64_t gpa, std::span<std::uint8_t> host,
                    abi::MemoryFlags flags = {});
#if defined(KVM_ABI_HAS_GUEST_MEMFD_FLAG_MMAP)
  // Maps [offset, offset + size) of a mappable guest_memfd (GUEST_MEMFD_FLAG_MMAP) and
  // registers it at `gpa` in the next free slot with KVM_SET_USER_MEMORY_REGION2, backed by
  // that guest_memfd range. The guest and these host bytes see the same memory while it is
  // shared (GUEST_MEMFD_FLAG_INIT_SHARED). Returns the host bytes.
  std::span<std::uint8_t> add_guest_memfd(Vm& vm, std::uint64_t gpa, const GuestMemfd& memfd,
                                          std::uint64_t offset, std::uint64_t size,
                                          abi::MemoryFlags flags = {});
  // The same with a guest_memfd of `size` bytes made for it (KVM_CREATE_GUEST_MEMFD with
  // GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED), kept open by the mapping.
  std::span<std::uint8_t> add_guest_memfd(Vm& vm, std::uint64_t gpa, std::uint64_t size,
                                          abi::MemoryFlags flags = {});
#endif

  const std::vector<Region>& regions() const noexcept { return regions_; }

  // True when [gpa, gpa + len) lies inside one region.
  bool contains(std::uint64_t gpa, std::uint64_t len) const noexcept;
  // The host bytes of [gpa, gpa + len); throws kvm::Error (EFAULT) naming the range otherwise.
  std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) const;
  // Host pointer for gpa, valid for len bytes (checked like span()).
  std::uint8_t* host_ptr(std::uint64_t gpa, std::uint64_t len) const {
    return span(gpa, len).data();
  }

  void write(std::uint64_t gpa, std::span<const std::uint8_t> bytes) const;
  void read(std::uint64_t gpa, std::span<std::uint8_t> out) const;

  // Objects are copied bytewise from and to guest memory.
  template <detail::TriviallyCopyable T>
  T read_obj(std::uint64_t gpa) const {
    T v;
    std::memcpy(&v, span(gpa, sizeof(T)).data(), sizeof(T));
    return v;
  }
  template <detail::TriviallyCopyable T>
  void write_obj(std::uint64_t gpa, const T& v) const {
    std::memcpy(span(gpa, sizeof(T)).data(), &v, sizeof(T));
  }

 private:
  const Region* find(std::uint64_t gpa, std::uint64_t len) const noexcept;
  std::uint32_t next_slot(const Vm& vm) const;

  std::vector<HostMapping> owned_;
  std::vector<Region> regions_;
};

}  // namespace kvm

// Safe containers for the kernel's variable-length arguments: a fixed header followed by N
// entries (kvm_cpuid2 + kvm_cpuid_entry2[], kvm_msrs + kvm_msr_entry[], kvm_msr_list +
// __u32[], kvm_irq_routing + kvm_irq_routing_entry[]). The buffer owns correctly aligned
// storage for `capacity` entries, keeps the header's count field and the entries in step, and
// refuses to grow past its capacity or the kernel's limit.
#pragma once

#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "kvm/error.h"

namespace kvm {

template <class Header, class Entry, auto kCount, std::size_t kKernelMax>
class FlexBuffer {
  static_assert(std::is_trivially_copyable_v<Header> && std::is_trivially_copyable_v<Entry>);

 public:
  // The kernel's limit on entries for this argument type.
  static constexpr std::size_t kernel_max = kKernelMax;

  explicit FlexBuffer(std::size_t capacity = 0) { reserve_exact(capacity); }
  FlexBuffer(std::initializer_list<Entry> entries) : FlexBuffer(entries.size()) {
    for (const Entry& e : entries) push_back(e);
  }
  FlexBuffer(const FlexBuffer& other) : FlexBuffer(other.capacity_) {
    std::memcpy(storage_, other.storage_, bytes_for(capacity_));
  }
  FlexBuffer& operator=(const FlexBuffer& other) {
    if (this != &other) *this = FlexBuffer(other);
    return *this;
  }
  FlexBuffer(FlexBuffer&& o) noexcept
      : storage_(std::exchange(o.storage_, nullptr)), capacity_(std::exchange(o.capacity_, 0)) {}
  FlexBuffer& operator=(FlexBuffer&& o) noexcept {
    if (this != &o) {
      release(storage_);
      storage_ = std::exchange(o.storage_, nullptr);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~FlexBuffer() { release(storage_); }

  // A moved-from buffer has no storage; using it other than assigning to it is a bug.
  Header& header() noexcept { return *reinterpret_cast<Header*>(storage_); }
  const Header& header() const noexcept { return *reinterpret_cast<const Header*>(storage_); }
  // What the ioctl takes: the header, with the entries right behind it.
  Header* get() noexcept { return &header(); }

  std::size_t size() const noexcept { return header().*kCount; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size() == 0; }

  std::span<Entry> entries() noexcept { return {entry_ptr(), size()}; }
  std::span<const Entry> entries() const noexcept { return {entry_ptr(), size()}; }
  Entry& operator[](std::size_t i) { return entries()[checked(i)]; }
  const Entry& operator[](std::size_t i) const { return entries()[checked(i)]; }
  auto begin() noexcept { return entries().begin(); }
  auto end() noexcept { return entries().end(); }
  auto begin() const noexcept { return entries().begin(); }
  auto end() const noexcept { return entries().end(); }

  void push_back(const Entry& e) {
    std::size_t n = size();
    if (n == capacity_) grow(n + 1);
    entry_ptr()[n] = e;
    set_size(n + 1);
  }

  // Sets the count; new entries are zeroed. Throws past the kernel's limit.
  void resize(std::size_t n) {
    if (n > capacity_) grow(n);
    std::size_t old = size();
    if (n > old) std::memset(static_cast<void*>(entry_ptr() + old), 0, (n - old) * sizeof(Entry));
    set_size(n);
  }

  // Makes room for n entries without changing the count (used before "fill me" ioctls).
  void reserve(std::size_t n) {
    if (n > capacity_) grow(n);
  }

  void clear() noexcept { set_size(0); }

 private:
  static void release(std::byte* p) noexcept {
    if (p) ::operator delete[](p, std::align_val_t{kAlign});
  }
  static constexpr std::size_t kAlign = alignof(Header) > alignof(Entry) ? alignof(Header)
                                                                         : alignof(Entry);

  static std::size_t bytes_for(std::size_t n) { return sizeof(Header) + n * sizeof(Entry); }

  Entry* entry_ptr() const noexcept { return reinterpret_cast<Entry*>(storage_ + sizeof(Header)); }

  std::size_t checked(std::size_t i) const {
    if (i >= size()) {
      throw std::out_of_range("entry " + std::to_string(i) + " of " + std::to_string(size()));
    }
    return i;
  }

  void set_size(std::size_t n) noexcept {
    header().*kCount = static_cast<std::remove_reference_t<decltype(header().*kCount)>>(n);
  }

  void reserve_exact(std::size_t n) {
    if (n > kKernelMax) {
      throw Error(
          "kvm::FlexBuffer", E2BIG,
          std::to_string(n) + " entries > the kernel's limit of " + std::to_string(kKernelMax));
    }
    auto* fresh = static_cast<std::byte*>(::operator new[](bytes_for(n), std::align_val_t{kAlign}));
    std::memset(fresh, 0, bytes_for(n));
    // The count may already say more than the old storage holds (the kernel writes the needed
    // count into it when it answers E2BIG); copy only what exists.
    if (storage_) {
      std::size_t keep = size() < capacity_ ? size() : capacity_;
      std::memcpy(fresh, storage_, bytes_for(keep < n ? keep : n));
    }
    release(storage_);
    storage_ = fresh;
    capacity_ = n;
  }

  // Room for at least n entries: doubles (amortised push_back) but never past the kernel's
  // limit, and throws when n itself is past it.
  void grow(std::size_t n) {
    if (n > kKernelMax) reserve_exact(n);  // throws E2BIG naming the limit
    std::size_t want = capacity_ * 2 > n ? capacity_ * 2 : n;
    if (want < 8) want = 8;
    reserve_exact(want < kKernelMax ? want : kKernelMax);
  }

  std::byte* storage_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace kvm

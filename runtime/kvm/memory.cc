#include "kvm/memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

#include "kvm/format.h"
#include "kvm/vm.h"

namespace kvm {
namespace {

std::string range(std::uint64_t gpa, std::uint64_t len) {
  return "[" + detail::hex(gpa) + ", +" + detail::hex(len) + ")";
}

}  // namespace

HostMapping::HostMapping(std::size_t size) {
  if (size == 0) throw Error("mmap", EINVAL, "guest memory of size 0");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw_error("mmap", errno, std::to_string(size) + " bytes of guest memory");
  data_ = static_cast<std::uint8_t*>(p);
  size_ = size;
}

HostMapping::HostMapping(int fd, std::uint64_t offset, std::size_t size) {
  if (size == 0) throw Error("mmap", EINVAL, "mapping of size 0 of fd " + std::to_string(fd));
  void* p =
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    throw_error("mmap", errno, "fd " + std::to_string(fd) + " " + range(offset, size) + " shared");
  }
  data_ = static_cast<std::uint8_t*>(p);
  size_ = size;
}

HostMapping::HostMapping(HostMapping&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

HostMapping& HostMapping::operator=(HostMapping&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

// Out of line: a std::span constructor resolved in a header costs every includer's compile.
std::span<std::uint8_t> HostMapping::bytes() const noexcept { return {data_, size_}; }

HostMapping::~HostMapping() {
  if (data_) ::munmap(data_, size_);
}

std::uint32_t GuestMemory::next_slot(const Vm& vm) const {
  std::uint32_t slot = 0;
  while (vm.memory_region(slot)) ++slot;
  return slot;
}

std::span<std::uint8_t> GuestMemory::add(Vm& vm, std::uint64_t gpa, std::uint64_t size,
                                         abi::MemoryFlags flags) {
  HostMapping m(static_cast<std::size_t>(size));
  add_borrowed(vm, gpa, m.bytes(), flags);  // validates and registers; throws before we keep m
  owned_.push_back(std::move(m));
  return regions_.back().host;
}

void GuestMemory::add_borrowed(Vm& vm, std::uint64_t gpa, std::span<std::uint8_t> host,
                               abi::MemoryFlags flags) {
  MemoryRegion r;
  r.slot = next_slot(vm);
  r.guest_phys_addr = gpa;
  r.size = host.size();
  r.host_addr = host.data();
  r.flags = flags;
  vm.set_user_memory_region(r);
  regions_.push_back(Region{r.slot, gpa, host, flags});
}

const GuestMemory::Region* GuestMemory::find(std::uint64_t gpa, std::uint64_t len) const noexcept {
  for (const Region& r : regions_) {
    // Overflow-safe: compare offsets, never gpa + len.
    if (gpa < r.guest_phys_addr) continue;
    std::uint64_t off = gpa - r.guest_phys_addr;
    if (off > r.host.size() || len > r.host.size() - off) continue;
    return &r;
  }
  return nullptr;
}

bool GuestMemory::contains(std::uint64_t gpa, std::uint64_t len) const noexcept {
  return find(gpa, len) != nullptr;
}

std::span<std::uint8_t> GuestMemory::span(std::uint64_t gpa, std::uint64_t len) const {
  const Region* r = find(gpa, len);
  if (!r) throw Error("guest memory", EFAULT, range(gpa, len) + " is not inside one memory region");
  return r->host.subspan(static_cast<std::size_t>(gpa - r->guest_phys_addr),
                         static_cast<std::size_t>(len));
}

void GuestMemory::write(std::uint64_t gpa, std::span<const std::uint8_t> bytes) const {
  auto dst = span(gpa, bytes.size());
  if (!bytes.empty()) std::memcpy(dst.data(), bytes.data(), bytes.size());
}

void GuestMemory::read(std::uint64_t gpa, std::span<std::uint8_t> out) const {
  auto src = span(gpa, out.size());
  if (!out.empty()) std::memcpy(out.data(), src.data(), out.size());
}

}  // namespace kvm

// guest_memfd: KVM_CREATE_GUEST_MEMFD, KVM_SET_USER_MEMORY_REGION2 and guest memory regions
// backed by a mapped guest_memfd.
#include "kvm/guest_memfd.h"

#include <sys/stat.h>

#include <cerrno>
#include <sstream>
#include <string>

#include "kvm/memory.h"
#include "kvm/vm.h"

namespace kvm {
namespace {

#if defined(KVM_ABI_HAS_KVM_CREATE_GUEST_MEMFD)
constexpr std::uint64_t kPageSize = 4096;
constexpr const char* kCreate = "KVM_CREATE_GUEST_MEMFD";
constexpr const char* kSetRegion2 = "KVM_SET_USER_MEMORY_REGION2";
#endif
// GUEST_MEMFD_FLAG_*: the kernel ABI's values, also where these headers predate them.
constexpr std::uint64_t kMmap = 1;
constexpr std::uint64_t kInitShared = 2;
#if defined(KVM_ABI_HAS_GUEST_MEMFD_FLAG_MMAP)
static_assert(kMmap == abi::consts::GuestMemfdFlagMmap);
static_assert(kInitShared == abi::consts::GuestMemfdFlagInitShared);
#endif

#if defined(KVM_ABI_HAS_KVM_CREATE_GUEST_MEMFD)
std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

// "0x3 (GUEST_MEMFD_FLAG_MMAP|GUEST_MEMFD_FLAG_INIT_SHARED)"; bits newer than the headers
// stay in the number only.
std::string memfd_flags(std::uint64_t flags) {
  std::string names;
  auto name = [&](std::uint64_t bit, const char* text) {
    if (!(flags & bit)) return;
    if (!names.empty()) names += "|";
    names += text;
  };
  name(kMmap, "GUEST_MEMFD_FLAG_MMAP");
  name(kInitShared, "GUEST_MEMFD_FLAG_INIT_SHARED");
  return names.empty() ? hex(flags) : hex(flags) + " (" + names + ")";
}

// The size KVM gave the guest_memfd (its inode's size), for the bounds check of a slot.
std::uint64_t memfd_size(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) < 0)
    throw_error(kSetRegion2, errno, what + ": guest_memfd " + std::to_string(fd));
  return static_cast<std::uint64_t>(st.st_size);
}

void check_memfd_range(const MemoryRegion& r, const std::string& what) {
  if (r.guest_memfd_offset % kPageSize) {
    throw Error(
        kSetRegion2, EINVAL,
        what + ": guest_memfd offset " + hex(r.guest_memfd_offset) + " is not 4 KiB aligned");
  }
  std::uint64_t have = memfd_size(r.guest_memfd, what);
  if (r.guest_memfd_offset > have || r.size > have - r.guest_memfd_offset) {
    throw Error(kSetRegion2, EINVAL,
                what + ": guest_memfd offset " + hex(r.guest_memfd_offset) + " + size " +
                    hex(r.size) + " exceeds the guest_memfd's " + hex(have) + " bytes");
  }
  if ((r.flags & abi::MemoryFlags::LogDirtyPages) == abi::MemoryFlags::LogDirtyPages) {
    throw Error(kSetRegion2, EINVAL,
                what + ": KVM_MEM_LOG_DIRTY_PAGES is not supported on a guest_memfd slot");
  }
}

#endif

}  // namespace

GuestMemfd::GuestMemfd(Fd fd, std::uint64_t size, std::uint64_t flags)
    : fd_(std::move(fd)), size_(size), flags_(flags) {
  if (!fd_) throw Error("kvm::GuestMemfd", EBADF, "no guest_memfd fd");
}

bool GuestMemfd::mappable() const noexcept { return (flags_ & kMmap) != 0; }

bool GuestMemfd::initially_shared() const noexcept { return (flags_ & kInitShared) != 0; }

#if defined(KVM_ABI_HAS_KVM_CREATE_GUEST_MEMFD)
GuestMemfd Vm::create_guest_memfd(std::uint64_t size, std::uint64_t flags) const {
  const std::string what = hex(size) + " bytes, flags " + memfd_flags(flags);
  if (check_extension(abi::Cap::GuestMemfd) <= 0) {
    throw Error(kCreate, EINVAL, what + "; KVM_CAP_GUEST_MEMFD is not supported here");
  }
  if (size == 0 || size % kPageSize) {
    throw Error(kCreate, EINVAL, what + ": size is not a non-zero multiple of 4 KiB");
  }
  // KVM_CAP_GUEST_MEMFD_FLAGS is newer than KVM_CAP_GUEST_MEMFD: a kernel without it takes
  // no flags at all, and reports 0 here.
#if defined(KVM_ABI_HAS_KVM_CAP_GUEST_MEMFD_FLAGS)
  auto offered = static_cast<std::uint64_t>(check_extension(abi::Cap::GuestMemfdFlags));
#else
  std::uint64_t offered = 0;  // these headers predate guest_memfd flags
#endif
  if (flags & ~offered) {
    throw Error(kCreate, EINVAL,
                what + ": " + memfd_flags(flags & ~offered) +
                    " not among KVM_CAP_GUEST_MEMFD_FLAGS " + memfd_flags(offered));
  }
  abi::kvm_create_guest_memfd arg{};
  arg.size = size;
  arg.flags = flags;
  return GuestMemfd(Fd(ioctl<abi::ioctl::CreateGuestMemfd>(arg, what)), size, flags);
}

void Vm::set_user_memory_region2(const MemoryRegion& r) {
  const std::string what = "slot " + std::to_string(r.slot);
  MemoryRegion region = r;
  if (r.guest_memfd >= 0) {
    region.flags |= abi::MemoryFlags::GuestMemfd;
  } else if ((r.flags & abi::MemoryFlags::GuestMemfd) == abi::MemoryFlags::GuestMemfd) {
    throw Error(kSetRegion2, EBADF, what + ": KVM_MEM_GUEST_MEMFD without a guest_memfd fd");
  }
  check_region(
      region, kSetRegion2,
      abi::MemoryFlags::LogDirtyPages | abi::MemoryFlags::Readonly | abi::MemoryFlags::GuestMemfd);
  if (region.guest_memfd >= 0) check_memfd_range(region, what);
  abi::kvm_userspace_memory_region2 k{};
  k.slot = region.slot;
  k.flags = abi::to_underlying(region.flags);
  k.guest_phys_addr = region.guest_phys_addr;
  k.memory_size = region.size;
  k.userspace_addr = reinterpret_cast<std::uint64_t>(region.host_addr);
  k.guest_memfd_offset = region.guest_memfd_offset;
  k.guest_memfd = region.guest_memfd >= 0 ? static_cast<std::uint32_t>(region.guest_memfd) : 0;
  const std::string context = what + " [" + hex(region.guest_phys_addr) + ", " +
                              hex(region.guest_phys_addr + region.size) + ")";
  // The generated descriptor names no capability for this ioctl: the failure path asks
  // KVM_CAP_USER_MEMORY2 itself.
  int rc = try_ioctl<abi::ioctl::SetUserMemoryRegion2>(k);
  if (rc < 0) {
    detail::throw_gated_error(kSetRegion2, -rc, context, fd(),
                              abi::to_underlying(abi::Cap::UserMemory2), "KVM_CAP_USER_MEMORY2");
  }
  remember_region(region);
}

#endif

#if defined(KVM_ABI_HAS_GUEST_MEMFD_FLAG_MMAP)
std::span<std::uint8_t> GuestMemory::add_guest_memfd(Vm& vm, std::uint64_t gpa,
                                                     const GuestMemfd& memfd, std::uint64_t offset,
                                                     std::uint64_t size, abi::MemoryFlags flags) {
  if (!memfd.mappable()) {
    throw Error("kvm::GuestMemory::add_guest_memfd", EINVAL,
                "guest_memfd " + std::to_string(memfd.fd()) + " (flags " +
                    memfd_flags(memfd.flags()) +
                    ") was created without GUEST_MEMFD_FLAG_MMAP: the host cannot map it");
  }
  if (offset > memfd.size() || size > memfd.size() - offset || size == 0) {
    throw Error("kvm::GuestMemory::add_guest_memfd", EINVAL,
                "offset " + hex(offset) + " + size " + hex(size) + " exceeds the guest_memfd's " +
                    hex(memfd.size()) + " bytes");
  }
  HostMapping m(memfd.fd(), offset, static_cast<std::size_t>(size));
  MemoryRegion r;
  r.slot = next_slot(vm);
  r.guest_phys_addr = gpa;
  r.size = size;
  r.host_addr = m.data();
  r.flags = flags;
  r.guest_memfd = memfd.fd();
  r.guest_memfd_offset = offset;
  vm.set_user_memory_region2(r);  // throws before we keep m, which then unmaps
  regions_.push_back(Region{r.slot, gpa, m.bytes(), flags | abi::MemoryFlags::GuestMemfd});
  owned_.push_back(std::move(m));
  return regions_.back().host;
}

std::span<std::uint8_t> GuestMemory::add_guest_memfd(Vm& vm, std::uint64_t gpa, std::uint64_t size,
                                                     abi::MemoryFlags flags) {
  GuestMemfd memfd = vm.create_guest_memfd(size, kMmap | kInitShared);
  return add_guest_memfd(vm, gpa, memfd, 0, size, flags);
}

#endif

}  // namespace kvm

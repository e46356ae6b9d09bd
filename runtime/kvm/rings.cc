#include "kvm/rings.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

#include "kvm/error.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"

namespace kvm {
namespace {

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// KVM_COALESCED_MMIO_PAGE_OFFSET and KVM_DIRTY_LOG_PAGE_OFFSET: pages into the vCPU mapping.
constexpr std::size_t kCoalescedPage =
    static_cast<std::size_t>(abi::consts::CoalescedMmioPageOffset);
constexpr std::size_t kDirtyRingPage = static_cast<std::size_t>(abi::consts::DirtyLogPageOffset);

}  // namespace

CoalescedRing::CoalescedRing(const Vcpu& vcpu) {
  std::size_t page = page_size();
  if ((kCoalescedPage + 1) * page > vcpu.mmap_size()) {
    throw Error("KVM_CAP_COALESCED_MMIO", ENOTSUP, "the vCPU mapping has no coalesced MMIO page");
  }
  auto* base = reinterpret_cast<std::uint8_t*>(&vcpu.run_struct());
  ring_ = reinterpret_cast<abi::kvm_coalesced_mmio_ring*>(base + kCoalescedPage * page);
  max_ = static_cast<std::uint32_t>((page - sizeof(abi::kvm_coalesced_mmio_ring)) /
                                    sizeof(abi::kvm_coalesced_mmio));
}

std::size_t CoalescedRing::drain(FunctionRef<void(const CoalescedWrite&)> f) {
  std::size_t n = 0;
  std::atomic_ref<std::uint32_t> first(ring_->first), last(ring_->last);
  for (;;) {
    std::uint32_t head = first.load(std::memory_order_relaxed);
    std::uint32_t tail = last.load(std::memory_order_acquire);
    if (head == tail) return n;
    if (head >= max_ || tail >= max_) {
      throw Error("coalesced MMIO ring", EIO,
                  "index first=" + std::to_string(head) + " last=" + std::to_string(tail) +
                      " outside the ring of " + std::to_string(max_));
    }
    const abi::kvm_coalesced_mmio& e = ring_->coalesced_mmio[head];
    if (e.len > sizeof(e.data)) {
      throw Error("coalesced MMIO ring", EIO, "entry length " + std::to_string(e.len) + " > 8");
    }
    f(CoalescedWrite{e.phys_addr, e.pio != 0, {e.data, e.len}});
    first.store((head + 1) % max_, std::memory_order_release);
    ++n;
  }
}

void enable_dirty_ring(Vm& vm, std::uint32_t bytes) {
  int acq = vm.check_extension(abi::Cap::DirtyLogRingAcqRel);
  abi::Cap cap = acq > 0 ? abi::Cap::DirtyLogRingAcqRel : abi::Cap::DirtyLogRing;
  int max = acq > 0 ? acq : vm.check_extension(abi::Cap::DirtyLogRing);
  if (max <= 0) throw Error("KVM_ENABLE_CAP", ENOTSUP, "the host has no KVM_CAP_DIRTY_LOG_RING");
  std::size_t page = page_size();
  if (bytes < page || (bytes & (bytes - 1)) != 0 || bytes > static_cast<std::uint32_t>(max)) {
    throw Error("KVM_ENABLE_CAP", EINVAL,
                "dirty ring of " + std::to_string(bytes) + " bytes: needs a power of two between " +
                    std::to_string(page) + " and " + std::to_string(max));
  }
  vm.enable_cap(cap, bytes);
}

DirtyRing::DirtyRing(const Vcpu& vcpu, std::uint32_t bytes) {
  std::size_t page = page_size();
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.fd(),
                   static_cast<off_t>(kDirtyRingPage * page));
  if (p == MAP_FAILED) {
    throw_error("mmap", errno,
                "dirty ring of vcpu " + std::to_string(vcpu.id()) +
                    " (was enable_dirty_ring() called before the vCPU was created?)");
  }
  gfns_ = static_cast<abi::kvm_dirty_gfn*>(p);
  bytes_ = bytes;
  count_ = bytes / sizeof(abi::kvm_dirty_gfn);
}

DirtyRing::~DirtyRing() {
  if (gfns_) ::munmap(gfns_, bytes_);
}

DirtyRing::DirtyRing(DirtyRing&& o) noexcept
    : gfns_(std::exchange(o.gfns_, nullptr)), count_(o.count_), bytes_(o.bytes_), next_(o.next_) {}

std::size_t DirtyRing::harvest(FunctionRef<void(const DirtyGfn&)> f) {
  constexpr std::uint32_t kDirty = abi::to_underlying(abi::DirtyGfnFlags::Dirty);
  constexpr std::uint32_t kReset = abi::to_underlying(abi::DirtyGfnFlags::Reset);
  std::size_t n = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    abi::kvm_dirty_gfn& g = gfns_[next_ % count_];
    std::atomic_ref<std::uint32_t> flags(g.flags);
    if ((flags.load(std::memory_order_acquire) & kDirty) == 0) break;
    f(DirtyGfn{g.slot, g.offset});
    flags.store(kReset, std::memory_order_release);
    ++next_;
    ++n;
  }
  return n;
}

}  // namespace kvm

// The two shared-memory rings a VMM drains without ioctls:
//  - the coalesced MMIO/PIO ring (KVM_CAP_COALESCED_MMIO): writes to zones registered with
//    Vm::register_coalesced_mmio() are queued here instead of exiting;
//  - the per-vCPU dirty ring (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]): guest frames written since
//    the last harvest, an alternative to the dirty bitmap for live migration.
// Both readers validate the indices and lengths the kernel wrote before using them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kvm/abi/kvm_abi.h"
#include "kvm/function_ref.h"

namespace kvm {

class Vcpu;
class Vm;

// One write queued in the coalesced ring.
struct CoalescedWrite {
  std::uint64_t addr;  // guest-physical address, or port for PIO
  bool pio;
  std::span<const std::uint8_t> data;  // 1..8 bytes
};

// A view of the coalesced ring mapped with a vCPU (the ring is per VM; any vCPU's mapping
// shows it). Valid while the Vcpu lives.
class CoalescedRing {
 public:
  explicit CoalescedRing(const Vcpu& vcpu);
  // Calls f for each queued write, oldest first, and frees its slot. Returns the count.
  std::size_t drain(FunctionRef<void(const CoalescedWrite&)> f);
  std::size_t capacity() const noexcept { return max_; }

 private:
  abi::kvm_coalesced_mmio_ring* ring_;
  std::uint32_t max_;
};

// One dirty guest frame: memory slot and page offset within it.
struct DirtyGfn {
  std::uint32_t slot;
  std::uint64_t offset;
};

// Enables the dirty ring on a VM (before any vCPU exists): `bytes` per vCPU, a power of two
// multiple of the page size, at most what KVM_CAP_DIRTY_LOG_RING reports. Prefers the
// acquire/release flavour when the host has it.
void enable_dirty_ring(Vm& vm, std::uint32_t bytes);

// The dirty ring of one vCPU, mapped from its fd.
class DirtyRing {
 public:
  DirtyRing(const Vcpu& vcpu, std::uint32_t bytes);
  ~DirtyRing();
  DirtyRing(DirtyRing&&) noexcept;
  DirtyRing& operator=(DirtyRing&&) = delete;
  DirtyRing(const DirtyRing&) = delete;

  // Calls f for every frame dirtied since the last harvest and marks it for reset; then the
  // caller runs Vm::reset_dirty_rings() to re-protect the pages. Returns the count.
  std::size_t harvest(FunctionRef<void(const DirtyGfn&)> f);
  std::size_t entries() const noexcept { return count_; }

 private:
  abi::kvm_dirty_gfn* gfns_ = nullptr;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  std::uint64_t next_ = 0;  // fetch index, monotonic
};

}  // namespace kvm

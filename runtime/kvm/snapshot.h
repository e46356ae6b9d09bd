// kvm::Snapshot: a guest's memory and the vCPU state a reset needs, and a restore that costs
// what the guest dirtied since, not what it has. For fuzzers and sandboxes, which run a
// program, put the VM back, and run the next.
//
// The pages to copy back are found with KVM's dirty tracking, which only sees writes through
// the guest (its instructions, and KVM's own writes on its behalf):
//  - the dirty log (KVM_GET_DIRTY_LOG; with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_CLEAR_DIRTY_LOG
//    re-protects only the pages restored). Costs one or two VM ioctls per slot and a scan of
//    the slot's bitmap (one bit per page: 32 KiB for 1 GiB);
//  - or the vCPU's dirty ring (KVM_CAP_DIRTY_LOG_RING): the frames come from shared memory, so
//    the cost follows the dirty pages alone (one KVM_RESET_DIRTY_RINGS when there were any).
// Writes the VMM makes itself (loading the next program) are invisible to both: report them
// with mark_dirty(). The registers, special registers and vCPU events go back through sync
// regs, so after the vCPU's first run a restore issues no vCPU ioctl.
//
// Not restored: FPU/SSE/AVX state, MSRs beyond those in the special registers (EFER, APIC
// base), the local APIC, the MP state (a vCPU that shut down needs
// Vcpu::set_mp_state(Runnable)), and regions added after the snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "kvm/abi/kvm_abi.h"
#include "kvm/memory.h"

namespace kvm {

class DirtyRing;
class Vcpu;
class Vm;

#if defined(__x86_64__)

class Snapshot {
 public:
  enum class Tracking {
    DirtyLog,       // KVM_GET_DIRTY_LOG, which also clears and re-protects
    ManualProtect,  // KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG of the restored pages
    DirtyRing,      // the vCPU's dirty ring + KVM_RESET_DIRTY_RINGS
  };

  // Copies every region of `memory` (each must have been added with
  // MemoryFlags::LogDirtyPages) and the state of `vcpu`, and starts tracking from here:
  // pages dirtied before do not count. Pages that read as zero are not copied, so a sparse
  // guest keeps a sparse image. Tracks with the dirty log (KVM_GET_DIRTY_LOG once, which
  // starts each slot's log afresh), and enables manual protect
  // (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) on `vm` where the host has it, which changes what
  // Vm::dirty_log() does for the VMM's own uses too (reading no longer clears). `vm` and the
  // regions must outlive the snapshot; `vm` must not be moved meanwhile. A snapshot that
  // fails (kvm::Error naming the reason) leaves the VM as it was.
  Snapshot(const Vm& vm, const GuestMemory& memory, const Vcpu& vcpu);
  // The same, tracking with `ring`, the dirty ring of `vcpu` (kvm::enable_dirty_ring() on the
  // VM before the vCPU was created). The VM must have no other vCPU. `ring` must outlive the
  // snapshot.
  Snapshot(const Vm& vm, const GuestMemory& memory, const Vcpu& vcpu, DirtyRing& ring);

  Snapshot(Snapshot&&) noexcept = default;
  Snapshot& operator=(Snapshot&&) noexcept = default;

  // Pages the VMM wrote itself since the snapshot (through GuestMemory or the host mapping):
  // restore() puts them back too. Throws kvm::Error (EFAULT) when [gpa, gpa + len) is not
  // inside one region of the snapshot.
  void mark_dirty(std::uint64_t gpa, std::uint64_t len);

  // With a dirty ring: moves the ring's frames into the snapshot and re-arms the ring, so the
  // guest can go on. Call it on KVM_EXIT_DIRTY_RING_FULL. Nothing to do with the dirty log.
  void collect();

  // Copies back every page dirtied since the snapshot or the last restore, re-arms tracking
  // for them, and puts back the registers, special registers and vCPU events of `vcpu`
  // (through kvm_run with the next run; ioctls before its first run). Returns the number of
  // pages copied. The dirty pages come from the ring (re-armed with Vm::reset_dirty_rings())
  // or from KVM_GET_DIRTY_LOG (re-armed with Vm::clear_dirty_log() under manual protect).
  std::size_t restore(Vcpu& vcpu);

  Tracking tracking() const noexcept { return tracking_; }
  // Bytes of guest memory the snapshot covers.
  std::uint64_t bytes() const noexcept;

 private:
  struct Slot {
    std::uint32_t slot;
    std::uint64_t gpa;
    std::span<std::uint8_t> host;
    HostMapping image;                // the memory at snapshot time
    std::vector<std::uint64_t> log;   // KVM_GET_DIRTY_LOG's bitmap
    std::vector<std::uint64_t> held;  // pages in pending_, one bit each
  };

  void take_logged_memory(const GuestMemory& memory);
  void add_slots(const GuestMemory& memory);
  void copy_memory();
  void take_vcpu(const Vcpu& vcpu);
  void discard_ring();
  void discard_log();
  void fetch_log(Slot& s) const;
  void hold(std::size_t slot_index, std::uint64_t page);
  std::size_t restore_held();
  std::size_t restore_logged(Slot& s);
  Slot& slot_by_number(std::uint32_t slot);

  const Vm* vm_ = nullptr;
  DirtyRing* ring_ = nullptr;
  Tracking tracking_ = Tracking::DirtyLog;
  std::vector<Slot> slots_;
  // Pages to copy back that the dirty log will not report: marked by the VMM, or harvested
  // from the ring. (slot index, page); each at most once (Slot::held).
  std::vector<std::pair<std::size_t, std::uint64_t>> pending_;
  abi::kvm_regs regs_{};
  abi::kvm_sregs sregs_{};
  abi::kvm_vcpu_events events_{};
};

#endif  // __x86_64__

}  // namespace kvm

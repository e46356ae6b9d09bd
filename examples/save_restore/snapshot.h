// Saving a VM with one x86 vCPU into a byte buffer and restoring it into a fresh VM.
//
// The buffer is a list of sections, each [u32 tag][u32 0][u64 size][size bytes], after an
// 8-byte magic. Sections hold the kernel's structs as they are (kvm_regs, kvm_sregs, ...), so
// a buffer is only valid on a host with the same struct layouts (same arch; the layouts are
// part of the stable KVM ABI). Real VMMs add a version and per-field migration; this is the
// minimum that lets a guest continue.
//
// What is saved, in the order it is restored (the order matters: sregs before MSRs and the
// local APIC, which depend on EFER and the APIC base; events last):
//   VM:   guest memory (every region of the GuestMemory), the in-kernel irqchip (PIC master,
//         PIC slave, IOAPIC: KVM_GET_IRQCHIP), the kvmclock (KVM_GET_CLOCK);
//   vCPU: general registers (KVM_GET_REGS), FPU/SSE (KVM_GET_FPU), the XSAVE area
//         (KVM_GET_XSAVE2 / KVM_GET_XSAVE), XCR0 (KVM_GET_XCRS), special registers
//         (KVM_GET_SREGS), MSRs (KVM_GET_MSRS for KVM_GET_MSR_INDEX_LIST), the MP state, the
//         local APIC (KVM_GET_LAPIC), pending events (KVM_GET_VCPU_EVENTS) and debug
//         registers (KVM_GET_DEBUGREGS).
// Whatever the host refuses is recorded in the Report instead of failing the whole save: some
// hosts reject the MSR ioctls with EINVAL, and then MSR state (e.g. KERNEL_GS_BASE, the TSC)
// does not travel with the snapshot. Callers decide whether that is acceptable.
//
// Before saving a vCPU that has just exited for port IO or MMIO, let KVM finish the
// instruction: kick the vCPU and run it once (complete_pending_io below).
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "kvm/kvm.h"

namespace snapshot {

enum class Tag : std::uint32_t {
  Memory = 1,   // u64 guest-physical address, then the bytes
  Irqchip = 2,  // one kvm_irqchip per chip
  Clock = 3,
  Regs = 10,
  Fpu = 11,
  Xsave = 12,  // the whole XSAVE area (KVM_GET_XSAVE2 size, or kvm_xsave)
  Xcrs = 13,
  Sregs = 14,
  Msrs = 15,  // kvm_msr_entry[]
  MpState = 16,
  Lapic = 17,
  VcpuEvents = 18,
  Debugregs = 19,
};

// What went into the buffer (or came out of it) and what the host would not give or take.
struct Report {
  std::vector<std::string> done;
  std::vector<std::string> skipped;  // "KVM_GET_MSRS: Invalid argument", ...
};

class Writer {
 public:
  Writer();
  void add(Tag tag, std::span<const std::uint8_t> bytes);
  void add(Tag tag, std::span<const std::uint8_t> head, std::span<const std::uint8_t> bytes);
  template <class T>
  void add_obj(Tag tag, const T& value) {
    add(tag, {reinterpret_cast<const std::uint8_t*>(&value), sizeof value});
  }
  const std::vector<std::uint8_t>& bytes() const noexcept { return buf_; }

 private:
  std::vector<std::uint8_t> buf_;
};

class Reader {
 public:
  // Checks the magic and that every section lies inside the buffer (throws otherwise).
  explicit Reader(std::span<const std::uint8_t> buffer);
  // The sections with this tag, in the order they were written.
  std::vector<std::span<const std::uint8_t>> all(Tag tag) const;
  // The one section with this tag, or an empty span if absent.
  std::span<const std::uint8_t> one(Tag tag) const;
  // Copies the section into a T; throws if its size is not sizeof(T). False if absent.
  template <class T>
  bool get(Tag tag, T& out) const {
    std::span<const std::uint8_t> s = one(tag);
    if (s.empty()) return false;
    check_size(tag, s.size(), sizeof(T));
    std::memcpy(&out, s.data(), sizeof(T));
    return true;
  }

 private:
  static void check_size(Tag tag, std::size_t got, std::size_t want);
  std::multimap<Tag, std::span<const std::uint8_t>> sections_;
};

// Makes KVM finish an IO/MMIO instruction the vCPU exited for, without running further guest
// code: immediate_exit (a kick) + KVM_RUN, which returns at once as interrupted.
void complete_pending_io(kvm::Vcpu& vcpu);

void save_vm(const kvm::Vm& vm, const kvm::GuestMemory& memory, Writer& out, Report& report);
struct SaveOptions {
  // false: leave MSRs out, as happens by force on hosts whose MSR ioctls fail (used to show
  // and test that case on hosts where they work).
  bool msrs = true;
};
void save_vcpu(const kvm::System& sys, const kvm::Vm& vm, const kvm::Vcpu& vcpu, Writer& out,
               Report& report, SaveOptions options = {});

// Restores into a fresh VM that already has its in-kernel irqchip (like the source) and no
// memory yet; then create the vCPU and call restore_vcpu.
void restore_vm(const Reader& in, kvm::Vm& vm, kvm::GuestMemory& memory, Report& report);
void restore_vcpu(const Reader& in, kvm::Vcpu& vcpu, Report& report);

}  // namespace snapshot

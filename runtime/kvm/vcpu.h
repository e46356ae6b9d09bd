// kvm::Vcpu: one virtual CPU. Owns its fd and its kvm_run mapping (mapped once at creation);
// run() enters the guest and returns a typed Exit.
//
// The default path costs nothing, and a VMM that reads registers on every exit still gets
// them without an ioctl. With KVM_CAP_SYNC_REGS (VcpuOptions::sync_regs, on unless the host
// lacks it) KVM can copy the general registers, the special registers and the vCPU events
// into kvm_run at every exit, but that copy costs every exit ~0.2 µs on our hosts. So a group
// is requested (kvm_valid_regs, which KVM reads at each KVM_RUN) only once the VMM has read
// it: the first regs() after an exit is an ioctl (~5 µs), and from the next run on KVM copies
// the registers out and regs() reads that copy. A group not read for kSyncWindowRuns runs is
// dropped again. After the first run, set_regs()/set_sregs()/set_vcpu_events() always go
// back through kvm_run with the next run (kvm_dirty_regs), whether or not the group is
// requested; before it they are ioctls, so set-up errors come from the call that caused them.
// A VMM can also choose the groups itself (set_sync_regs(): these at every exit, or none),
// edit the synced copy in place (synced_regs()) and mark what it changed
// (mark_sync_regs_dirty()).
#pragma once

// run_for() takes a std::chrono::nanoseconds. In C++20, <chrono> also brings the calendar and
// time zones, which would add a third to the cost of compiling kvm/kvm.h; libstdc++'s
// <bits/chrono.h> holds just durations and clocks (what <thread> uses). Elsewhere, <chrono>.
#if __has_include(<bits/chrono.h>)
#include <bits/chrono.h>
#else
#include <chrono>
#endif
#include <cstdint>
#include <span>
#include <vector>

#include "kvm/abi/kvm_abi.h"
#include "kvm/exit.h"
#include "kvm/fd.h"
#include "kvm/ioctl.h"
#include "kvm/kick.h"
#include "kvm/nested_state.h"
#include "kvm/x86_types.h"

namespace kvm {

// The bytes a ONE_REG register id holds: 1 << its KVM_REG_SIZE field (1 .. 256).
std::size_t one_reg_size(std::uint64_t id) noexcept;

class Vcpu : public IoctlTarget<Vcpu, abi::Scope::Vcpu> {
 public:
  // Takes ownership of a vCPU fd and maps its kvm_run (`mmap_size` from
  // KVM_GET_VCPU_MMAP_SIZE). `sync_mask` is the KVM_SYNC_X86_* set to enable (0: none).
  Vcpu(Fd fd, unsigned id, std::size_t mmap_size, std::uint64_t sync_mask);
  Vcpu(Vcpu&&) noexcept = default;
  Vcpu& operator=(Vcpu&&) noexcept = default;

  int fd() const noexcept { return fd_.get(); }
  unsigned id() const noexcept { return id_; }

  // The shared kvm_run structure and the size of the whole mapping.
  abi::kvm_run& run_struct() const noexcept { return *static_cast<abi::kvm_run*>(map_->addr()); }
  std::size_t mmap_size() const noexcept { return map_->size(); }

  // KVM_RUN: runs the guest until it exits. EINTR/EAGAIN (a kick, a signal) come back as
  // Exit::interrupted(), not as errors; EFAULT/EHWPOISON with exit reason
  // KVM_EXIT_MEMORY_FAULT (KVM_CAP_MEMORY_FAULT_INFO) comes back as that exit (see
  // Exit::memory_fault()). Other failures throw. Once the vCPU has a Kicker (or has used
  // run_for()), the first run on a thread blocks the kick signal there and gives KVM the
  // guest's signal mask (KVM_SET_SIGNAL_MASK, see kick.h); until then run() issues nothing
  // but KVM_RUN.
  Exit run();

  // run() with a deadline, for fuzzers and sandboxes: like run(), but a guest still running
  // `timeout` after the call comes back as Exit::timed_out() (also interrupted()). A POSIX
  // timer sends the kick signal to the calling thread at the deadline and then every
  // min(max(timeout, 100 µs), 1 ms) until the run ends, so a deadline that falls just before
  // the guest is entered costs at most that much more. timed_out() is only reported once the
  // deadline has passed; a kick or another signal before it is a plain interruption. Costs
  // two timer_settime() calls per run (one timer per Vcpu, re-created when another thread
  // calls). Like run(), sets the guest's signal mask (KVM_SET_SIGNAL_MASK) on a new thread.
  Exit run_for(std::chrono::nanoseconds timeout);

  // A handle that makes run() return promptly from another thread or a signal handler. The
  // first one makes the vCPU kickable (see run() and kick.h).
  Kicker kicker() const { return Kicker(map_); }

  // How many runs a sync-regs group stays requested without being read (x86; see above).
  static constexpr unsigned kSyncWindowRuns = 32;

  // KVM_ENABLE_CAP on the vCPU.
  void enable_cap(abi::Cap cap, std::uint64_t arg0 = 0, std::uint64_t arg1 = 0,
                  std::uint64_t arg2 = 0, std::uint64_t arg3 = 0, std::uint32_t flags = 0) const;

  // KVM_HAS_DEVICE_ATTR / KVM_GET_DEVICE_ATTR / KVM_SET_DEVICE_ATTR on the vCPU fd
  // (KVM_CAP_VCPU_ATTRIBUTES): per-vCPU controls such as arm64's timer and PMU settings.
  bool has_attr(std::uint32_t group, std::uint64_t attr) const;
  void get_attr(std::uint32_t group, std::uint64_t attr, void* value) const;
  void set_attr(std::uint32_t group, std::uint64_t attr, const void* value) const;

  // KVM_GET_MP_STATE / KVM_SET_MP_STATE (KVM_CAP_MP_STATE): runnable, halted, ...
  abi::MpState mp_state() const;
  void set_mp_state(abi::MpState state) const;

  // KVM_GET_STATS_FD (KVM_CAP_BINARY_STATS_FD).
  Fd stats_fd() const;

  // KVM_SET_SIGNAL_MASK: the signals blocked while the guest runs. The kick signal is never
  // among them (it is removed from `mask`). nullptr goes back to the default: the mask of the
  // thread that calls run(), without the kick signal.
  void set_signal_mask(const sigset_t* mask);

#if defined(KVM_ABI_HAS_KVM_PRE_FAULT_MEMORY)
  // KVM_PRE_FAULT_MEMORY (KVM_CAP_PRE_FAULT_MEMORY): maps the 4 KiB aligned guest range
  // [gpa, gpa + size) into the guest's page tables ahead of its first access, as this vCPU
  // would fault it in. Resumes after EINTR/EAGAIN until done and returns the bytes done (all
  // of size); a failure says how many bytes were done before it, and names the cap (asked
  // with KVM_CHECK_EXTENSION) where the host lacks it.
  std::uint64_t pre_fault_memory(std::uint64_t gpa, std::uint64_t size) const;
#endif

#if defined(__x86_64__)
  // General registers (KVM_GET_REGS / KVM_SET_REGS, or the synced copy; see above).
  abi::kvm_regs regs() const;
  void set_regs(const abi::kvm_regs& regs);
  // Special registers: segments, control registers, EFER, APIC base (KVM_GET/SET_SREGS).
  abi::kvm_sregs sregs() const;
  void set_sregs(const abi::kvm_sregs& sregs);
  // The KVM_SYNC_X86_* groups this vCPU may have synced (VcpuOptions and the host).
  std::uint64_t sync_regs_mask() const noexcept { return sync_mask_; }
  // The groups KVM will copy into kvm_run at the end of the next run: those read since the
  // last window of kSyncWindowRuns runs began, or in the window before it.
  std::uint64_t sync_regs_requested() const noexcept { return sync_requested_; }
  // KVM_CAP_SYNC_REGS, chosen by the VMM (kvm_valid_regs): from the next run on, KVM copies
  // exactly `groups` (KVM_SYNC_X86_* bits; 0 for none) into kvm_run at every exit, read or
  // not, instead of the groups read lately; a read of another group is an ioctl that requests
  // nothing. Bits outside sync_regs_mask() (what VcpuOptions and the host's KVM_CAP_SYNC_REGS
  // allow) are refused, naming them.
  void set_sync_regs(std::uint64_t groups);
  // Goes back to requesting the KVM_CAP_SYNC_REGS groups on demand (the default; see above).
  void set_sync_regs_on_demand() noexcept;
  // Whether the KVM_CAP_SYNC_REGS groups are requested on demand: true until set_sync_regs().
  bool sync_regs_on_demand() const noexcept { return !sync_fixed_; }
  // The groups whose copy in kvm_run's synced_regs() is the vCPU's current state: those KVM
  // copied out at the last exit (KVM_CAP_SYNC_REGS), and those read or set since.
  std::uint64_t sync_regs_valid() const noexcept { return sync_valid_; }
  // The synced copy itself (kvm_run.s.regs, KVM_CAP_SYNC_REGS), for a VMM that edits registers
  // in place; only the groups of sync_regs_valid() hold the vCPU's state. Changes reach the
  // vCPU only once marked with mark_sync_regs_dirty().
  abi::kvm_sync_regs& synced_regs() noexcept { return run_struct().s.regs; }
  // Marks groups of synced_regs() as changed (kvm_dirty_regs, KVM_CAP_SYNC_REGS): KVM loads
  // them into the vCPU as the next KVM_RUN starts. Refused, naming the groups: bits outside
  // sync_regs_mask(), and groups not in sync_regs_valid() (their copy is stale, and KVM would
  // load it whole: read the group first, or give it whole with set_regs()/set_sregs()/
  // set_vcpu_events()).
  void mark_sync_regs_dirty(std::uint64_t groups);

  // KVM_GET_FPU / KVM_SET_FPU: x87 and SSE state.
  abi::kvm_fpu fpu() const;
  void set_fpu(const abi::kvm_fpu& fpu) const;
  // KVM_GET_MSRS / KVM_SET_MSRS: reads/writes the listed MSRs; returns how many succeeded
  // (processing stops at the first MSR KVM refuses).
  int get_msrs(Msrs& msrs) const;
  int set_msrs(const Msrs& msrs) const;
  // KVM_SET_CPUID2 / KVM_GET_CPUID2 (KVM_CAP_EXT_CPUID): the guest's CPUID table.
  void set_cpuid2(const Cpuid& cpuid) const;
  Cpuid cpuid2() const;
  // KVM_GET_LAPIC / KVM_SET_LAPIC (in-kernel irqchip): the local APIC's register page.
  abi::kvm_lapic_state lapic() const;
  void set_lapic(const abi::kvm_lapic_state& lapic) const;
  // KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS (KVM_CAP_VCPU_EVENTS): pending exceptions,
  // interrupts, NMIs and SMIs. With VcpuOptions::sync_events, synced like regs().
  abi::kvm_vcpu_events vcpu_events() const;
  void set_vcpu_events(const abi::kvm_vcpu_events& events);
  // KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS (KVM_CAP_DEBUGREGS).
  abi::kvm_debugregs debugregs() const;
  void set_debugregs(const abi::kvm_debugregs& regs) const;
  // KVM_GET_XSAVE / KVM_SET_XSAVE (KVM_CAP_XSAVE): the legacy 4 KiB XSAVE area.
  abi::kvm_xsave xsave() const;
  void set_xsave(const abi::kvm_xsave& xsave) const;
  // KVM_GET_XSAVE2 (KVM_CAP_XSAVE2): the whole XSAVE area, whose size the VM reports; the
  // result can be given back to set_xsave2(), which writes it with KVM_SET_XSAVE (the kernel
  // takes the larger area through the same ioctl).
  std::vector<std::uint32_t> xsave2(std::size_t size_bytes) const;
  void set_xsave2(std::span<const std::uint32_t> area) const;
  // KVM_GET_XCRS / KVM_SET_XCRS (KVM_CAP_XCRS): extended control registers (XCR0).
  abi::kvm_xcrs xcrs() const;
  void set_xcrs(const abi::kvm_xcrs& xcrs) const;
  // KVM_SET_GUEST_DEBUG (KVM_CAP_SET_GUEST_DEBUG): single-step, breakpoints.
  void set_guest_debug(const abi::kvm_guest_debug& dbg) const;
  // KVM_TRANSLATE: the guest-physical address of a guest-virtual one under current paging.
  abi::kvm_translation translate(std::uint64_t linear_address) const;
  // KVM_INTERRUPT: queues an external interrupt (only without an in-kernel irqchip).
  void interrupt(std::uint32_t irq) const;
  // KVM_NMI (KVM_CAP_USER_NMI) and KVM_SMI (KVM_CAP_X86_SMM): queue an NMI / SMI.
  void nmi() const;
  void smi() const;
  // KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ (KVM_CAP_TSC_CONTROL / KVM_CAP_GET_TSC_KHZ).
  void set_tsc_khz(std::uint32_t khz) const;
  std::uint32_t tsc_khz() const;
  // KVM_KVMCLOCK_CTRL (KVM_CAP_KVMCLOCK_CTRL): tells the guest it was paused.
  void kvmclock_ctrl() const;
  // KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE (KVM_CAP_NESTED_STATE, which gives the buffer
  // size): the state of a nested guest this vCPU runs, for save/restore. Both ask
  // KVM_CHECK_EXTENSION first and refuse, naming the cap, where it reads 0; set_nested_state()
  // also refuses a header size outside its buffer or beyond the cap's size.
  NestedState nested_state() const;
  void set_nested_state(const NestedState& state) const;
#if defined(KVM_ABI_HAS_KVM_X86_TDX_VM)
  // KVM_MEMORY_ENCRYPT_OP with a TDX vCPU command (KVM_TDX_INIT_VCPU,
  // KVM_TDX_INIT_MEM_REGION, KVM_TDX_GET_CPUID) on a vCPU of an X86VmType::Tdx VM; errors name
  // the command, the TDX module's hw_error, and a missing TDX VM type (KVM_CAP_VM_TYPES, asked
  // with KVM_CHECK_EXTENSION).
  void memory_encrypt_op(abi::kvm_tdx_cmd& cmd) const;
#endif
#endif

  // KVM_GET_ONE_REG / KVM_SET_ONE_REG (KVM_CAP_ONE_REG): one register by its 64-bit id (on
  // x86, KVM_X86_REG_MSR ids and KVM_REG_GUEST_SSP) into or from `value`, which must be
  // exactly the id's size (KVM_REG_SIZE_*, see one_reg_size()); another size is refused
  // before the kernel sees it.
  void get_one_reg(std::uint64_t id, std::span<std::uint8_t> value) const;
  void set_one_reg(std::uint64_t id, std::span<const std::uint8_t> value) const;

#if defined(__aarch64__) || defined(__riscv)
  // KVM_GET_ONE_REG / KVM_SET_ONE_REG (KVM_CAP_ONE_REG) through a raw pointer: the id's size
  // field (KVM_REG_SIZE_*) says how many bytes `value` holds, unchecked; prefer the spans.
  void get_one_reg(std::uint64_t id, void* value) const;
  void set_one_reg(std::uint64_t id, const void* value) const;
  std::uint64_t one_reg_u64(std::uint64_t id) const;
  // KVM_GET_REG_LIST: the ids of every register get/set_one_reg() accepts on this vCPU.
  std::vector<std::uint64_t> reg_list() const;
#endif
#if defined(__aarch64__)
  // KVM_ARM_VCPU_INIT: initial state and features; required before the first run on arm64.
  // Use Vm::arm_preferred_target() for the target.
  void arm_vcpu_init(const abi::kvm_vcpu_init& init) const;
  // KVM_ARM_VCPU_FINALIZE (KVM_CAP_ARM_SVE): completes a feature's configuration after
  // arm_vcpu_init() and before the first run; today only KVM_ARM_VCPU_SVE (after setting the
  // vector lengths with set_one_reg(KVM_REG_ARM64_SVE_VLS, ...)).
  void arm_vcpu_finalize(int feature) const;
  // KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS on arm64 (KVM_CAP_VCPU_EVENTS): a pending
  // SError and its syndrome, and external data aborts.
  abi::kvm_vcpu_events vcpu_events() const;
  void set_vcpu_events(const abi::kvm_vcpu_events& events) const;
  // KVM_SET_GUEST_DEBUG on arm64 (KVM_CAP_SET_GUEST_DEBUG): single-step, hardware breakpoints
  // and watchpoints (kvm_guest_debug.arch).
  void set_guest_debug(const abi::kvm_guest_debug& dbg) const;
#endif

 private:
  // Blocks the kick signal in the calling thread (once per thread) and, when this vCPU last
  // ran on another thread, gives KVM the mask to run the guest with (see kick.h).
  bool prepare_thread();  // false: KVM runs the guest with the thread's own mask
  // KVM_SET_SIGNAL_MASK with `mask` (the kernel's 64-bit layout) minus the kick signal.
  void set_guest_signal_mask(std::uint64_t mask) const;
#if defined(__x86_64__)
  // A group's state: the copy in kvm_run when it is current, else the ioctl (see above).
  template <class GetIo, class T>
  T read_synced(std::uint64_t group, T& copy) const;
  template <class SetIo, class T>
  void write_synced(std::uint64_t group, T& copy, const T& value);
#endif
  // Starts a new window of kSyncWindowRuns runs when one ends; returns the groups to request.
  std::uint64_t next_sync_request() noexcept;

  Fd fd_;
  unsigned id_ = 0;
  detail::RunMappingRef map_;
  detail::ThreadTimer timer_;                     // for run_for()
  [[maybe_unused]] std::uint64_t sync_mask_ = 0;  // groups that may be synced (x86 only)
  // The sync-regs bookkeeping is a cache of vCPU state, updated by the const getters too.
  mutable std::uint64_t sync_requested_ = 0;  // kvm_valid_regs of the next run
  mutable std::uint64_t sync_valid_ = 0;      // groups whose copy in kvm_run is current
  mutable std::uint64_t sync_read_ = 0;       // groups read in the current window
  unsigned window_runs_ = 0;                  // runs in the current window
  bool sync_fixed_ = false;                   // set_sync_regs() chose sync_requested_
  bool has_run_ = false;
  std::uint64_t prepared_thread_ = 0;  // the serial number of the thread prepare_thread() saw
  bool has_user_mask_ = false;         // set_signal_mask() gave user_mask_
  std::uint64_t user_mask_ = 0;
};

}  // namespace kvm

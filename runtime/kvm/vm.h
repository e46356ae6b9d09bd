// kvm::Vm: one virtual machine. Owns its fd; creates vCPUs and devices; manages guest memory
// slots, interrupts (irqchip, irqfd, MSI, GSI routing), clocks and dirty-page tracking.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kvm/abi/kvm_abi.h"
#include "kvm/fd.h"
#include "kvm/guest_memfd.h"
#include "kvm/ioctl.h"
#include "kvm/msr_filter.h"
#include "kvm/vm_type.h"
#include "kvm/x86_types.h"

namespace kvm {

class Vcpu;
class Device;

// One guest memory slot as given to KVM_SET_USER_MEMORY_REGION, or to
// KVM_SET_USER_MEMORY_REGION2 with a guest_memfd range behind it.
struct MemoryRegion {
  std::uint32_t slot = 0;
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t size = 0;
  void* host_addr = nullptr;
  abi::MemoryFlags flags{};
  // KVM_SET_USER_MEMORY_REGION2 only: the guest_memfd (kvm::GuestMemfd::fd()) whose bytes
  // [guest_memfd_offset, guest_memfd_offset + size) back the slot; -1 for none.
  int guest_memfd = -1;
  std::uint64_t guest_memfd_offset = 0;
};

// A KVM_IOEVENTFD registration: a guest write of `length` bytes to `addr` (port or MMIO)
// signals `eventfd` in the kernel, without an exit to userspace.
struct IoEventFd {
  std::uint64_t addr = 0;
  std::uint32_t length = 0;  // 1, 2, 4 or 8; 0 matches any length (KVM_CAP_IOEVENTFD_ANY_LENGTH)
  int eventfd = -1;
  bool pio = false;                        // port IO instead of MMIO
  std::optional<std::uint64_t> datamatch;  // signal only when the written value matches
};

struct VcpuOptions {
  // Let KVM copy the registers into kvm_run at exits (KVM_CAP_SYNC_REGS) once the VMM reads
  // them, so that Vcpu::regs()/sregs() on every exit cost no ioctl, and let set_regs() /
  // set_sregs() go back through kvm_run (see kvm/vcpu.h). Costs nothing until registers are
  // read. On by default where the host supports it.
  bool sync_regs = true;
  // The same for the vCPU events (pending exceptions, interrupts, NMIs, SMIs;
  // KVM_SYNC_X86_EVENTS): Vcpu::vcpu_events()/set_vcpu_events(). Like the registers, the
  // events are only copied out once they are read. Needs sync_regs; ignored where the host
  // lacks it.
  bool sync_events = true;
};

// Limits the runtime checks input against, from KVM_CHECK_EXTENSION; -1 means "not asked yet".
// A System asks once and hands them to every VM it creates (they are the same for every VM of
// a host), which saves a VM its own ioctls for them.
struct VmLimits {
  int nr_memslots = -1;     // KVM_CAP_NR_MEMSLOTS
  int max_vcpu_id = -1;     // KVM_CAP_MAX_VCPU_ID
  int max_vcpus = -1;       // KVM_CAP_MAX_VCPUS
  int address_spaces = -1;  // KVM_CAP_MULTI_ADDRESS_SPACE
};

#if defined(__x86_64__)
// kvm_pit_config.flags of KVM_CREATE_PIT2 (not the KVM_PIT_FLAGS_* of kvm_pit_state2).
enum class PitConfig : std::uint32_t {
  None = 0,
  SpeakerDummy = abi::consts::PitSpeakerDummy,  // KVM_PIT_SPEAKER_DUMMY
};
#endif

class Vm : public IoctlTarget<Vm, abi::Scope::Vm> {
 public:
  // Takes ownership of a VM fd; `vcpu_mmap_size` is KVM_GET_VCPU_MMAP_SIZE, `type` what
  // KVM_CREATE_VM was given. System::create_vm is the usual way to get one.
  Vm(Fd fd, std::size_t vcpu_mmap_size, VmLimits limits = {}, VmType type = {});
  Vm(Vm&&) noexcept = default;
  Vm& operator=(Vm&&) noexcept = default;

  int fd() const noexcept { return fd_.get(); }

  // KVM_CHECK_EXTENSION on the VM fd (KVM_CAP_CHECK_EXTENSION_VM): some answers differ per VM.
  int check_extension(abi::Cap cap) const;

  // The limits the runtime checks input against, from check_extension(), asked once per host
  // (a System hands its answers to the VMs it creates): vCPUs a VM may have
  // (KVM_CAP_MAX_VCPUS), the bound of vCPU ids (KVM_CAP_MAX_VCPU_ID, or KVM_CAP_MAX_VCPUS where
  // that reads 0, as create_vcpu() uses it) and memory slots per address space
  // (KVM_CAP_NR_MEMSLOTS).
  int max_vcpus() const;
  int max_vcpu_id() const;
  int nr_memslots() const;

  // KVM_CREATE_VCPU: a vCPU with the given id (0 <= id < KVM_CAP_MAX_VCPU_ID), with kvm_run
  // mapped. Nothing is left behind if any step fails.
  Vcpu create_vcpu(unsigned id, VcpuOptions options = {}) const;

  // KVM_SET_USER_MEMORY_REGION: creates a slot, or moves an existing one or changes its
  // dirty logging (KVM cannot resize a slot, nor change its host memory or read-only flag).
  // Checked first: a non-null, page-aligned host address, page alignment and size, overlap
  // with the VM's other slots, the slot limit (KVM_CAP_NR_MEMSLOTS), the address space in the
  // slot id's upper 16 bits (KVM_CAP_MULTI_ADDRESS_SPACE), and the host's physical-address
  // width.
  void set_user_memory_region(const MemoryRegion& region);
#if defined(KVM_ABI_HAS_KVM_CREATE_GUEST_MEMFD)
  // KVM_SET_USER_MEMORY_REGION2 (KVM_CAP_USER_MEMORY2): the same, and a slot may take its
  // memory from a guest_memfd (region.guest_memfd, KVM_CAP_GUEST_MEMFD; KVM_MEM_GUEST_MEMFD is
  // set for it). Checked first as above, and the guest_memfd range must be 4 KiB aligned and
  // lie inside the guest_memfd; dirty logging is refused on it (KVM has none for guest_memfd).
  // A failure asks KVM_CHECK_EXTENSION whether the host has KVM_CAP_USER_MEMORY2 at all.
  void set_user_memory_region2(const MemoryRegion& region);
  // KVM_CREATE_GUEST_MEMFD (KVM_CAP_GUEST_MEMFD): `size` bytes (a multiple of 4 KiB) of guest
  // memory that need not be mapped in this process. `flags` (GUEST_MEMFD_FLAG_*) must be among
  // those KVM_CAP_GUEST_MEMFD_FLAGS offers; GUEST_MEMFD_FLAG_MMAP makes it mappable,
  // GUEST_MEMFD_FLAG_INIT_SHARED starts it shared with the host (see kvm/guest_memfd.h).
  GuestMemfd create_guest_memfd(std::uint64_t size, std::uint64_t flags = 0) const;
#endif
#if defined(KVM_ABI_HAS_KVM_SET_MEMORY_ATTRIBUTES)
  // KVM_SET_MEMORY_ATTRIBUTES (KVM_CAP_MEMORY_ATTRIBUTES): sets the attributes
  // (KVM_MEMORY_ATTRIBUTE_PRIVATE: the guest's pages come from the slot's guest_memfd, not the
  // host mapping) of the 4 KiB aligned range [gpa, gpa + size). Asks check_extension()
  // first: attributes the host does not offer, or a host without the cap, are refused naming it.
  void set_memory_attributes(std::uint64_t gpa, std::uint64_t size, std::uint64_t attributes) const;
#endif
  // Deletes a slot (KVM_SET_USER_MEMORY_REGION with size 0).
  void delete_memory_region(std::uint32_t slot);
  // Guest-physical addresses must stay below 1 << phys_addr_bits(): the host CPU's MAXPHYADDR
  // on x86, the VM's IPA size on arm64 (VmType::arm_ipa_bits(), else the default 40 bits).
  unsigned phys_addr_bits() const;
  // The machine type the VM was created with.
  VmType type() const noexcept { return type_; }
  // The slots this Vm has set, sorted by slot number.
  const std::vector<MemoryRegion>& memory_regions() const noexcept { return slots_; }
  // The region set in `slot`, or nullptr.
  const MemoryRegion* memory_region(std::uint32_t slot) const noexcept;

  // KVM_GET_DIRTY_LOG: the slot's dirty bitmap (one bit per 4 KiB page, in 64-bit words),
  // needs KVM_MEM_LOG_DIRTY_PAGES on the slot. Without manual protect, reading also clears it.
  std::vector<std::uint64_t> dirty_log(std::uint32_t slot) const;
  // KVM_CLEAR_DIRTY_LOG (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): re-protects the pages whose bits
  // are set in `bitmap`, starting at `first_page` of the slot (a multiple of 64).
  void clear_dirty_log(std::uint32_t slot, std::uint64_t first_page, std::uint32_t num_pages,
                       std::span<std::uint64_t> bitmap) const;
  // KVM_RESET_DIRTY_RINGS (KVM_CAP_DIRTY_LOG_RING): re-protects pages harvested from the
  // vCPUs' dirty rings; returns how many entries were reset.
  int reset_dirty_rings() const;

  // KVM_ENABLE_CAP on the VM (KVM_CAP_ENABLE_CAP_VM).
  void enable_cap(abi::Cap cap, std::uint64_t arg0 = 0, std::uint64_t arg1 = 0,
                  std::uint64_t arg2 = 0, std::uint64_t arg3 = 0, std::uint32_t flags = 0) const;

  // KVM_IRQFD: an eventfd that, when signalled, injects `gsi` (KVM_CAP_IRQFD). When the
  // kernel says EINVAL, KVM_GET_IRQCHIP tells whether the VM lacks the irqchip irqfd needs on
  // x86, and the error says so.
  void irqfd(int eventfd, std::uint32_t gsi, int resample_fd = -1) const;
  void irqfd_deassign(int eventfd, std::uint32_t gsi) const;
  // KVM_IOEVENTFD: see IoEventFd (KVM_CAP_IOEVENTFD).
  void ioeventfd(const IoEventFd& e) const;
  void ioeventfd_deassign(const IoEventFd& e) const;
  // KVM_SIGNAL_MSI (KVM_CAP_SIGNAL_MSI): injects one MSI; returns >0 if delivered, 0 if the
  // guest blocked it. Needs an in-kernel interrupt controller: a failure asks
  // KVM_CHECK_EXTENSION for KVM_CAP_IRQCHIP and names it when the host has none.
  int signal_msi(std::uint64_t address, std::uint32_t data, std::uint32_t flags = 0,
                 std::uint32_t devid = 0) const;
  // KVM_SET_GSI_ROUTING (KVM_CAP_IRQ_ROUTING): replaces the whole routing table. Needs an
  // in-kernel interrupt controller: a failure asks KVM_CHECK_EXTENSION for KVM_CAP_IRQCHIP and
  // names it when the host has none.
  void set_gsi_routing(IrqRouting& routing) const;
  // KVM_IRQ_LINE: sets an irqchip input pin's level (needs an in-kernel irqchip).
  void irq_line(std::uint32_t irq, bool level) const;
  // KVM_REGISTER_COALESCED_MMIO / KVM_UNREGISTER_COALESCED_MMIO (KVM_CAP_COALESCED_MMIO,
  // KVM_CAP_COALESCED_PIO): writes to the zone are queued in the vCPU's ring instead of exiting.
  void register_coalesced_mmio(std::uint64_t addr, std::uint32_t size, bool pio = false) const;
  void unregister_coalesced_mmio(std::uint64_t addr, std::uint32_t size, bool pio = false) const;

  // KVM_CREATE_DEVICE (KVM_CAP_DEVICE_CTRL): an in-kernel device such as a VFIO bridge or an
  // interrupt controller.
  Device create_device(abi::DeviceType type) const;
  // Whether KVM_CREATE_DEVICE would accept `type`, asked with KVM_CREATE_DEVICE_TEST.
  bool supports_device(abi::DeviceType type) const;

  // KVM_HAS/GET/SET_DEVICE_ATTR on the VM fd (KVM_CAP_VM_ATTRIBUTES).
  bool has_attr(std::uint32_t group, std::uint64_t attr) const;
  void get_attr(std::uint32_t group, std::uint64_t attr, void* value) const;
  void set_attr(std::uint32_t group, std::uint64_t attr, const void* value) const;

  // KVM_GET_STATS_FD (KVM_CAP_BINARY_STATS_FD): the VM's binary statistics; see stats.h.
  Fd stats_fd() const;

  // KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ on the VM (KVM_CAP_VM_TSC_CONTROL): the default TSC
  // frequency of vCPUs created afterwards.
  void set_tsc_khz(std::uint32_t khz) const;
  std::uint32_t tsc_khz() const;

#if defined(__x86_64__)
  // KVM_CREATE_IRQCHIP (KVM_CAP_IRQCHIP): in-kernel PIC, IOAPIC and per-vCPU LAPICs. Call
  // before creating vCPUs.
  void create_irqchip() const;
  // KVM_CREATE_PIT2 (KVM_CAP_PIT2): in-kernel i8254, after create_irqchip(). `config` is
  // kvm_pit_config.flags (KVM_PIT_SPEAKER_DUMMY: KVM also answers the PC speaker port 0x61);
  // unknown bits are refused.
  void create_pit2(PitConfig config = PitConfig::None) const;
  // KVM_GET_IRQCHIP / KVM_SET_IRQCHIP: state of PIC master (0), slave (1) or IOAPIC (2).
  abi::kvm_irqchip irqchip(std::uint32_t chip_id) const;
  void set_irqchip(const abi::kvm_irqchip& chip) const;
  // KVM_GET_PIT2 / KVM_SET_PIT2 (KVM_CAP_PIT_STATE2).
  abi::kvm_pit_state2 pit2() const;
  void set_pit2(const abi::kvm_pit_state2& state) const;
  // KVM_GET_CLOCK / KVM_SET_CLOCK (KVM_CAP_ADJUST_CLOCK): the guest's kvmclock.
  abi::kvm_clock_data clock() const;
  void set_clock(const abi::kvm_clock_data& data) const;
  // KVM_SET_TSS_ADDR: a 3-page region (below 4 GiB, outside any slot) KVM uses on Intel hosts
  // for real mode emulation.
  void set_tss_addr(std::uint64_t addr) const;
  // KVM_SET_IDENTITY_MAP_ADDR (KVM_CAP_SET_IDENTITY_MAP_ADDR): a 1-page region for the
  // identity page table on Intel hosts; before creating vCPUs.
  void set_identity_map_addr(std::uint64_t addr) const;
  // KVM_X86_SET_MSR_FILTER (KVM_CAP_X86_MSR_FILTER): which MSR accesses exit to userspace,
  // from a MsrFilter whose ranges were checked as they were added.
  void set_msr_filter(const MsrFilter& filter) const;
  // KVM_X86_SET_MSR_FILTER with the kernel's struct as is, unchecked; prefer the MsrFilter.
  void set_msr_filter(abi::kvm_msr_filter& filter) const;

  // KVM_MEMORY_ENCRYPT_OP with an SEV, SEV-ES or SEV-SNP command (KVM_SEV_*, KVM_SEV_SNP_*;
  // cmd.data points to the command's abi::kvm_sev_* struct, cmd.sev_fd is an open /dev/sev)
  // on a VM of type X86VmType::Sev, SevEs or Snp. A failure names the command and the
  // firmware's error (cmd.error), and says so when KVM_CAP_VM_TYPES (asked with
  // KVM_CHECK_EXTENSION) offers no SEV type.
  void memory_encrypt_op(abi::kvm_sev_cmd& cmd) const;
#if defined(KVM_ABI_HAS_KVM_X86_TDX_VM)
  // KVM_MEMORY_ENCRYPT_OP with a TDX VM command (KVM_TDX_CAPABILITIES, KVM_TDX_INIT_VM,
  // KVM_TDX_FINALIZE_VM; cmd.data points to its abi::kvm_tdx_* struct) on an X86VmType::Tdx
  // VM; errors name the command, the TDX module's hw_error, and a missing TDX VM type
  // (KVM_CAP_VM_TYPES, asked with KVM_CHECK_EXTENSION).
  void memory_encrypt_op(abi::kvm_tdx_cmd& cmd) const;
#endif
  // KVM_MEMORY_ENCRYPT_REG_REGION / KVM_MEMORY_ENCRYPT_UNREG_REGION: pins (unpins) host
  // memory that backs an SEV guest's encrypted pages; errors say when KVM_CAP_VM_TYPES (asked
  // with KVM_CHECK_EXTENSION) offers no SEV type.
  void register_encrypted_region(std::span<std::uint8_t> host) const;
  void unregister_encrypted_region(std::span<std::uint8_t> host) const;
#endif
#if defined(__aarch64__)
  // KVM_ARM_PREFERRED_TARGET: the vCPU target this host suits best, for Vcpu::arm_vcpu_init.
  abi::kvm_vcpu_init arm_preferred_target() const;
  // KVM_CREATE_IRQCHIP on arm64: an in-kernel GICv2 (hosts whose GIC can emulate one);
  // create_device(KVM_DEV_TYPE_ARM_VGIC_V3) is the way to a GICv3. Before creating vCPUs.
  void create_irqchip() const;
#endif

 private:
  int cached_cap(abi::Cap cap, int& cache) const;
  void check_slot_id(std::uint32_t id) const;
  void check_slot_change(const MemoryRegion& r) const;
  std::string irqfd_failure(int err, std::uint32_t gsi) const;
  // The checks both memory-region ioctls make before the kernel sees the slot, and the
  // bookkeeping after it took it.
  void check_region(const MemoryRegion& r, const char* ioctl_name, abi::MemoryFlags known) const;
  void remember_region(const MemoryRegion& r);

  Fd fd_;
  std::size_t vcpu_mmap_size_ = 0;
  std::vector<MemoryRegion> slots_;  // sorted by slot; a VM has few, a vector beats a map
  // Capability answers that cannot change for a VM, asked once (-1: not asked yet).
  mutable VmLimits limits_;
  VmType type_;
  // enable_cap(KVM_CAP_SPLIT_IRQCHIP) succeeded: the VM has an irqchip that KVM_GET_IRQCHIP
  // does not show (only for the hint of a failed irqfd()).
  mutable bool split_irqchip_ = false;
};

}  // namespace kvm

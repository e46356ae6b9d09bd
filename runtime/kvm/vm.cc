#include "kvm/vm.h"

#include <sys/mman.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <cerrno>
#include <cstring>

#include "kvm/device.h"
#include "kvm/device_attr.h"
#include "kvm/format.h"
#include "kvm/vcpu.h"

namespace kvm {
namespace {

constexpr std::uint64_t kPageSize = 4096;
constexpr const char* kSetRegion = "KVM_SET_USER_MEMORY_REGION";

using detail::hex;
std::string range(std::uint64_t start, std::uint64_t size) {
  return detail::hex_range(start, size);
}

}  // namespace

Vm::Vm(Fd fd, std::size_t vcpu_mmap_size, VmLimits limits, VmType type)
    : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size), limits_(limits), type_(type) {
  if (!fd_) throw Error("kvm::Vm", EBADF, "no VM fd");
}

int Vm::check_extension(abi::Cap cap) const {
  return ioctl<abi::ioctl::CheckExtension>(static_cast<unsigned long>(abi::to_underlying(cap)));
}

const MemoryRegion* Vm::memory_region(std::uint32_t slot) const noexcept {
  for (const MemoryRegion& r : slots_) {
    if (r.slot == slot) return &r;
  }
  return nullptr;
}

int Vm::cached_cap(abi::Cap cap, int& cache) const {
  if (cache < 0) cache = check_extension(cap);
  return cache;
}

unsigned Vm::phys_addr_bits() const {
#if defined(__x86_64__)
  // Asked once per process: CPUID traps to the hypervisor when this VMM itself runs in a VM
  // (tens of µs on our hosts), and the answer cannot change.
  static const unsigned bits = [] {
    // CPUID leaf 0x80000008, EAX[7:0]: the host's physical-address width.
    unsigned eax = 0, ebx, ecx, edx;
    if (__get_cpuid(0x80000008, &eax, &ebx, &ecx, &edx) && (eax & 0xff) >= 32) return eax & 0xff;
    return 36u;  // the architectural minimum with PAE
  }();
  return bits;
#elif defined(__aarch64__)
  // The IPA space the VM was created with; type 0 means 40 bits whatever the host supports
  // (api.rst, KVM_CREATE_VM). A slot above it fails with EFAULT.
  return type_.ipa_bits() != 0 ? type_.ipa_bits() : 40u;
#else
  return 48u;
#endif
}

Vcpu Vm::create_vcpu(unsigned id, VcpuOptions options) const {
  int max_id = cached_cap(abi::Cap::MaxVcpuId, limits_.max_vcpu_id);
  const char* cap_name = "KVM_CAP_MAX_VCPU_ID";
  if (max_id <= 0) {
    max_id = cached_cap(abi::Cap::MaxVcpus, limits_.max_vcpus);
    cap_name = "KVM_CAP_MAX_VCPUS";
  }
  if (max_id > 0 && id >= static_cast<unsigned>(max_id)) {
    throw Error("KVM_CREATE_VCPU", EINVAL,
                "vcpu id " + std::to_string(id) + " >= " + cap_name + " " + std::to_string(max_id));
  }
  std::uint64_t sync = 0;
#if defined(__x86_64__)
  if (options.sync_regs) {
    int valid = check_extension(abi::Cap::SyncRegs);
    if (valid > 0) {
      abi::SyncRegs want = abi::SyncRegs::Regs | abi::SyncRegs::Sregs;
      if (options.sync_events) want = want | abi::SyncRegs::Events;
      sync = static_cast<std::uint64_t>(valid) & abi::to_underlying(want);
    }
  }
#else
  (void)options;
#endif
  Fd fd(ioctl<abi::ioctl::CreateVcpu>(id, "vcpu id " + std::to_string(id)));
  return Vcpu(std::move(fd), id, vcpu_mmap_size_, sync);
}

void Vm::set_user_memory_region(const MemoryRegion& r) {
  if (r.guest_memfd >= 0) {
    throw Error(kSetRegion, EINVAL,
                "slot " + std::to_string(r.slot) +
                    ": a guest_memfd needs set_user_memory_region2 (KVM_SET_USER_MEMORY_REGION2)");
  }
  check_region(r, kSetRegion, abi::MemoryFlags::LogDirtyPages | abi::MemoryFlags::Readonly);
  abi::kvm_userspace_memory_region k{};
  k.slot = r.slot;
  k.flags = abi::to_underlying(r.flags);
  k.guest_phys_addr = r.guest_phys_addr;
  k.memory_size = r.size;
  k.userspace_addr = reinterpret_cast<std::uint64_t>(r.host_addr);
  ioctl<abi::ioctl::SetUserMemoryRegion>(
      k, "slot " + std::to_string(r.slot) + " " + range(r.guest_phys_addr, r.size));
  remember_region(r);
}

void Vm::check_region(const MemoryRegion& r, const char* ioctl_name, abi::MemoryFlags known) const {
  const std::string what = "slot " + std::to_string(r.slot);
  if (r.size == 0) {
    throw Error(ioctl_name, EINVAL, what + ": size 0; use delete_memory_region() to delete a slot");
  }
  if (r.guest_phys_addr % kPageSize) {
    throw Error(ioctl_name, EINVAL,
                what + ": guest address " + hex(r.guest_phys_addr) + " is not 4 KiB aligned");
  }
  if (r.size % kPageSize) {
    throw Error(ioctl_name, EINVAL, what + ": size " + hex(r.size) + " is not a multiple of 4 KiB");
  }
  const auto host = reinterpret_cast<std::uintptr_t>(r.host_addr);
  if (host == 0) {
    throw Error(ioctl_name, EFAULT, what + ": host address is null");
  }
  if (host % kPageSize) {
    throw Error(ioctl_name, EINVAL, what + ": host address " + hex(host) + " is not 4 KiB aligned");
  }
  if (r.guest_phys_addr + r.size < r.guest_phys_addr) {
    throw Error(ioctl_name, EINVAL, what + ": guest range wraps around the address space");
  }
  if (abi::to_underlying(r.flags & ~known) != 0) {
    throw Error(ioctl_name, EINVAL,
                what + ": unknown flags " + abi::flags_to_string(r.flags & ~known));
  }
  unsigned bits = phys_addr_bits();
  if (bits < 64 && r.guest_phys_addr + r.size > (std::uint64_t{1} << bits)) {
    throw Error(ioctl_name, EINVAL,
                what + " " + range(r.guest_phys_addr, r.size) + " reaches beyond the host's " +
                    std::to_string(bits) + "-bit physical address space");
  }
  check_slot_id(r.slot);
  check_slot_change(r);
  for (const MemoryRegion& other : slots_) {
    const std::uint32_t slot = other.slot;
    if (slot == r.slot || (slot >> 16) != (r.slot >> 16)) continue;
    bool disjoint = r.guest_phys_addr + r.size <= other.guest_phys_addr ||
                    other.guest_phys_addr + other.size <= r.guest_phys_addr;
    if (!disjoint) {
      throw Error(ioctl_name, EEXIST,
                  what + " " + range(r.guest_phys_addr, r.size) + " overlaps slot " +
                      std::to_string(slot) + " " + range(other.guest_phys_addr, other.size));
    }
  }
}

void Vm::remember_region(const MemoryRegion& r) {
  auto at = slots_.begin();
  while (at != slots_.end() && at->slot < r.slot) ++at;
  if (at != slots_.end() && at->slot == r.slot) {
    *at = r;
  } else {
    slots_.insert(at, r);
  }
}

// The slot id is (address space << 16) | slot: both must be ones the host has.
void Vm::check_slot_id(std::uint32_t id) const {
  const std::uint32_t space = id >> 16, slot = id & 0xffff;
  const std::string what = "slot " + std::to_string(id);
  if (space != 0) {
    // KVM_CAP_MULTI_ADDRESS_SPACE reads the number of address spaces, 0 when there is one.
    int spaces = cached_cap(abi::Cap::MultiAddressSpace, limits_.address_spaces);
    if (space >= static_cast<std::uint32_t>(spaces > 1 ? spaces : 1)) {
      throw Error(
          kSetRegion, EINVAL,
          what + " = (address space " + std::to_string(space) + " << 16) | slot " +
              std::to_string(slot) + ": the host has " + std::to_string(spaces > 1 ? spaces : 1) +
              " address space(s) (KVM_CAP_MULTI_ADDRESS_SPACE = " + std::to_string(spaces) + ")");
    }
  }
  int nslots = cached_cap(abi::Cap::NrMemslots, limits_.nr_memslots);
  if (nslots > 0 && slot >= static_cast<std::uint32_t>(nslots)) {
    throw Error(kSetRegion, EINVAL, what + " >= KVM_CAP_NR_MEMSLOTS " + std::to_string(nslots));
  }
}

// KVM can move an existing slot (a new guest address) and change its dirty logging, nothing
// else: its size, host memory and read-only flag are fixed until it is deleted.
void Vm::check_slot_change(const MemoryRegion& r) const {
  const MemoryRegion* old = memory_region(r.slot);
  if (!old) return;
  const std::string what = "slot " + std::to_string(r.slot);
  const char* fix = "; delete the slot first (delete_memory_region()) and set it again";
  if (r.size != old->size) {
    throw Error(kSetRegion, EINVAL,
                what + ": KVM cannot resize a slot (" + hex(old->size) + " -> " + hex(r.size) +
                    " bytes)" + fix);
  }
  if (r.host_addr != old->host_addr) {
    throw Error(kSetRegion, EINVAL,
                what + ": KVM cannot change a slot's host memory (" +
                    hex(reinterpret_cast<std::uintptr_t>(old->host_addr)) + " -> " +
                    hex(reinterpret_cast<std::uintptr_t>(r.host_addr)) + ")" + fix);
  }
  if (abi::to_underlying((r.flags ^ old->flags) & abi::MemoryFlags::Readonly) != 0) {
    throw Error(kSetRegion, EINVAL,
                what + ": KVM cannot change a slot's KVM_MEM_READONLY flag" + fix);
  }
}

void Vm::delete_memory_region(std::uint32_t slot) {
  const MemoryRegion* found = memory_region(slot);
  if (!found) {
    throw Error(kSetRegion, ENOENT, "slot " + std::to_string(slot) + " was never set on this VM");
  }
  abi::kvm_userspace_memory_region k{};
  k.slot = slot;
  k.guest_phys_addr = found->guest_phys_addr;
  ioctl<abi::ioctl::SetUserMemoryRegion>(k, "deleting slot " + std::to_string(slot));
  slots_.erase(slots_.begin() + (found - slots_.data()));
}

std::vector<std::uint64_t> Vm::dirty_log(std::uint32_t slot) const {
  const MemoryRegion* region = memory_region(slot);
  if (!region) {
    throw Error("KVM_GET_DIRTY_LOG", ENOENT,
                "slot " + std::to_string(slot) + " was never set on this VM");
  }
  std::uint64_t pages = region->size / kPageSize;
  std::vector<std::uint64_t> bitmap((pages + 63) / 64);
  abi::kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bitmap.data();
  ioctl<abi::ioctl::GetDirtyLog>(log, "slot " + std::to_string(slot));
  return bitmap;
}

void Vm::clear_dirty_log(std::uint32_t slot, std::uint64_t first_page, std::uint32_t num_pages,
                         std::span<std::uint64_t> bitmap) const {
  const std::string what = "slot " + std::to_string(slot);
  if (first_page % 64) {
    throw Error("KVM_CLEAR_DIRTY_LOG", EINVAL,
                what + ": first page " + std::to_string(first_page) + " is not a multiple of 64");
  }
  if (bitmap.size() * 64 < num_pages) {
    throw Error("KVM_CLEAR_DIRTY_LOG", EINVAL,
                what + ": bitmap of " + std::to_string(bitmap.size() * 64) + " bits for " +
                    std::to_string(num_pages) + " pages");
  }
  abi::kvm_clear_dirty_log c{};
  c.slot = slot;
  c.first_page = first_page;
  c.num_pages = num_pages;
  c.dirty_bitmap = bitmap.data();
  ioctl<abi::ioctl::ClearDirtyLog>(c, what);
}

int Vm::reset_dirty_rings() const { return ioctl<abi::ioctl::ResetDirtyRings>(); }

void Vm::enable_cap(abi::Cap cap, std::uint64_t a0, std::uint64_t a1, std::uint64_t a2,
                    std::uint64_t a3, std::uint32_t flags) const {
  detail::enable_cap(*this, cap, a0, a1, a2, a3, flags);
  if (cap == abi::Cap::SplitIrqchip) split_irqchip_ = true;
}

void Vm::irqfd(int eventfd, std::uint32_t gsi, int resample_fd) const {
  if (eventfd < 0) throw Error("KVM_IRQFD", EBADF, "eventfd " + std::to_string(eventfd));
  abi::kvm_irqfd f{};
  f.fd = static_cast<std::uint32_t>(eventfd);
  f.gsi = gsi;
  if (resample_fd >= 0) {
    f.flags = abi::to_underlying(abi::IrqfdFlags::Resample);
    f.resamplefd = static_cast<std::uint32_t>(resample_fd);
  }
  int r = try_ioctl<abi::ioctl::Irqfd>(f);
  if (r < 0) throw_error(abi::ioctl::Irqfd::name, -r, irqfd_failure(-r, gsi));
}

// Why KVM_IRQFD failed, as far as we can tell: on x86 it needs an in-kernel irqchip (full or
// split), and without one the kernel says only EINVAL.
std::string Vm::irqfd_failure(int err, std::uint32_t gsi) const {
  std::string why = "gsi " + std::to_string(gsi);
#if defined(__x86_64__)
  if (err == EINVAL && !split_irqchip_) {
    abi::kvm_irqchip probe{};  // KVM_GET_IRQCHIP answers ENXIO without a full irqchip
    if (try_ioctl<abi::ioctl::GetIrqchip>(probe) == -ENXIO) {
      why +=
          "; the VM has no in-kernel irqchip: call create_irqchip() (or enable "
          "KVM_CAP_SPLIT_IRQCHIP) before KVM_IRQFD";
    }
  }
#else
  (void)err;
#endif
  return why;
}

void Vm::irqfd_deassign(int eventfd, std::uint32_t gsi) const {
  abi::kvm_irqfd f{};
  f.fd = static_cast<std::uint32_t>(eventfd);
  f.gsi = gsi;
  f.flags = abi::to_underlying(abi::IrqfdFlags::Deassign);
  ioctl<abi::ioctl::Irqfd>(f, "deassign gsi " + std::to_string(gsi));
}

namespace {
abi::kvm_ioeventfd to_kernel(const IoEventFd& e) {
  if (e.length != 0 && e.length != 1 && e.length != 2 && e.length != 4 && e.length != 8) {
    throw Error("KVM_IOEVENTFD", EINVAL,
                "length " + std::to_string(e.length) + " is not 0, 1, 2, 4 or 8");
  }
  if (e.eventfd < 0) throw Error("KVM_IOEVENTFD", EBADF, "eventfd " + std::to_string(e.eventfd));
  abi::kvm_ioeventfd k{};
  k.addr = e.addr;
  k.len = e.length;
  k.fd = e.eventfd;
  abi::IoeventfdFlags flags{};
  if (e.pio) flags |= abi::IoeventfdFlags::Pio;
  if (e.datamatch) {
    flags |= abi::IoeventfdFlags::Datamatch;
    k.datamatch = *e.datamatch;
  }
  k.flags = abi::to_underlying(flags);
  return k;
}
std::string describe(const IoEventFd& e) {
  return std::string(e.pio ? "port " : "mmio ") + hex(e.addr) + " length " +
         std::to_string(e.length);
}
}  // namespace

void Vm::ioeventfd(const IoEventFd& e) const {
  abi::kvm_ioeventfd k = to_kernel(e);
  ioctl<abi::ioctl::Ioeventfd>(k, describe(e));
}

void Vm::ioeventfd_deassign(const IoEventFd& e) const {
  abi::kvm_ioeventfd k = to_kernel(e);
  k.flags |= abi::to_underlying(abi::IoeventfdFlags::Deassign);
  ioctl<abi::ioctl::Ioeventfd>(k, "deassign " + describe(e));
}

namespace {
// KVM_SIGNAL_MSI and KVM_SET_GSI_ROUTING need an in-kernel interrupt controller, but their own
// caps (KVM_CAP_SIGNAL_MSI, KVM_CAP_IRQ_ROUTING) do not say whether the host can give the VM
// one: riscv64 without AIA reports both and fails with EINVAL. Where the host reports
// KVM_CAP_IRQCHIP as 0, the error names that instead of the call's own cap. `context()` builds
// the error's context, on failure only: signal_msi() runs once per interrupt.
template <class Io, class Context>
int irqchip_ioctl(const Vm& vm, typename Io::arg_type& arg, Context context) {
  int r = vm.try_ioctl<Io>(arg);
  if (r >= 0) return r;
  constexpr abi::OptionalCap own = abi::capability_on<Io>(abi::Scope::Vm);
  static_assert(own.present,
                "irqchip_ioctl() names the call's own cap when the host has an irqchip");
  abi::Cap gate = vm.check_extension(abi::Cap::Irqchip) == 0 ? abi::Cap::Irqchip : own.value;
  detail::throw_gated_error(Io::name, -r, context(), vm.fd(), abi::to_underlying(gate),
                            abi::to_string(gate));
}
}  // namespace

int Vm::signal_msi(std::uint64_t address, std::uint32_t data, std::uint32_t flags,
                   std::uint32_t devid) const {
  abi::kvm_msi m{};
  m.address_lo = static_cast<std::uint32_t>(address);
  m.address_hi = static_cast<std::uint32_t>(address >> 32);
  m.data = data;
  m.flags = flags;
  m.devid = devid;
  return irqchip_ioctl<abi::ioctl::SignalMsi>(
      *this, m, [&] { return "address " + hex(address) + " data " + hex(data); });
}

void Vm::set_gsi_routing(IrqRouting& routing) const {
  irqchip_ioctl<abi::ioctl::SetGsiRouting>(
      *this, *routing.get(), [&] { return std::to_string(routing.size()) + " routes"; });
}

void Vm::irq_line(std::uint32_t irq, bool level) const {
  abi::kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  ioctl<abi::ioctl::IrqLine>(l, "irq " + std::to_string(irq));
}

namespace {
abi::kvm_coalesced_mmio_zone zone(std::uint64_t addr, std::uint32_t size, bool pio) {
  abi::kvm_coalesced_mmio_zone z{};
  z.addr = addr;
  z.size = size;
  z.pio = pio ? 1 : 0;
  return z;
}
}  // namespace

void Vm::register_coalesced_mmio(std::uint64_t addr, std::uint32_t size, bool pio) const {
  abi::kvm_coalesced_mmio_zone z = zone(addr, size, pio);
  ioctl<abi::ioctl::RegisterCoalescedMmio>(z, range(addr, size));
}

void Vm::unregister_coalesced_mmio(std::uint64_t addr, std::uint32_t size, bool pio) const {
  abi::kvm_coalesced_mmio_zone z = zone(addr, size, pio);
  ioctl<abi::ioctl::UnregisterCoalescedMmio>(z, range(addr, size));
}

Device Vm::create_device(abi::DeviceType type) const {
  abi::kvm_create_device d{};
  d.type = abi::to_underlying(type);
  std::string name(abi::to_string(type));
  ioctl<abi::ioctl::CreateDevice>(d, name.empty() ? "device type " + std::to_string(d.type) : name);
  return Device(Fd(static_cast<int>(d.fd)), type);
}

bool Vm::supports_device(abi::DeviceType type) const {
  abi::kvm_create_device d{};
  d.type = abi::to_underlying(type);
  d.flags = static_cast<std::uint32_t>(abi::consts::CreateDeviceTest);
  return try_ioctl<abi::ioctl::CreateDevice>(d) == 0;
}

bool Vm::has_attr(std::uint32_t group, std::uint64_t attr) const {
  return detail::has_attr(*this, group, attr);
}
void Vm::get_attr(std::uint32_t group, std::uint64_t attr, void* value) const {
  detail::get_attr(*this, group, attr, value);
}
void Vm::set_attr(std::uint32_t group, std::uint64_t attr, const void* value) const {
  detail::set_attr(*this, group, attr, value);
}

Fd Vm::stats_fd() const { return Fd(ioctl<abi::ioctl::GetStatsFd>()); }

void Vm::set_tsc_khz(std::uint32_t khz) const {
  ioctl<abi::ioctl::SetTscKhz>(khz, std::to_string(khz) + " kHz");
}
std::uint32_t Vm::tsc_khz() const {
  return static_cast<std::uint32_t>(ioctl<abi::ioctl::GetTscKhz>());
}

#if defined(__x86_64__)
void Vm::create_irqchip() const { ioctl<abi::ioctl::CreateIrqchip>(); }

void Vm::create_pit2(PitConfig config) const {
  const auto flags = static_cast<std::uint32_t>(config);
  if (flags & ~static_cast<std::uint32_t>(PitConfig::SpeakerDummy)) {
    throw Error("KVM_CREATE_PIT2", EINVAL,
                "unknown kvm_pit_config flags " + hex(flags) + "; KVM knows KVM_PIT_SPEAKER_DUMMY");
  }
  abi::kvm_pit_config c{};
  c.flags = flags;
  ioctl<abi::ioctl::CreatePit2>(c);
}

abi::kvm_irqchip Vm::irqchip(std::uint32_t chip_id) const {
  abi::kvm_irqchip c{};
  c.chip_id = chip_id;
  ioctl<abi::ioctl::GetIrqchip>(c, "chip " + std::to_string(chip_id));
  return c;
}

void Vm::set_irqchip(const abi::kvm_irqchip& chip) const {
  abi::kvm_irqchip c = chip;
  ioctl<abi::ioctl::SetIrqchip>(c, "chip " + std::to_string(chip.chip_id));
}

abi::kvm_pit_state2 Vm::pit2() const { return detail::get_struct<abi::ioctl::GetPit2>(*this); }

void Vm::set_pit2(const abi::kvm_pit_state2& state) const {
  detail::set_struct<abi::ioctl::SetPit2>(*this, state);
}

abi::kvm_clock_data Vm::clock() const { return detail::get_struct<abi::ioctl::GetClock>(*this); }

void Vm::set_clock(const abi::kvm_clock_data& data) const {
  detail::set_struct<abi::ioctl::SetClock>(*this, data);
}

void Vm::set_tss_addr(std::uint64_t addr) const {
  ioctl<abi::ioctl::SetTssAddr>(static_cast<unsigned long>(addr), "address " + hex(addr));
}

void Vm::set_identity_map_addr(std::uint64_t addr) const {
  std::uint64_t a = addr;
  ioctl<abi::ioctl::SetIdentityMapAddr>(a, "address " + hex(addr));
}

void Vm::set_msr_filter(abi::kvm_msr_filter& filter) const {
  ioctl<abi::ioctl::X86SetMsrFilter>(filter);
}
#endif

#if defined(__aarch64__)
abi::kvm_vcpu_init Vm::arm_preferred_target() const {
  abi::kvm_vcpu_init init{};
  ioctl<abi::ioctl::ArmPreferredTarget>(init);
  return init;
}
#endif

}  // namespace kvm

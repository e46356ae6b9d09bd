#include "kvm/snapshot.h"

#if defined(__x86_64__)

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "kvm/rings.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"

namespace kvm {
namespace {

constexpr std::uint64_t kPage = 4096;  // the dirty log's and the ring's granularity on x86
constexpr const char* kWhat = "kvm::Snapshot";

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
  }
  return acc == 0;
}

// Every region must be tracked, or the guest's writes to it would survive a restore.
void check_tracked(const GuestMemory& memory) {
  if (memory.regions().empty()) throw Error(kWhat, EINVAL, "the guest memory has no region");
  for (const GuestMemory::Region& r : memory.regions()) {
    if (!abi::any(r.flags, abi::MemoryFlags::LogDirtyPages)) {
      throw Error(kWhat, EINVAL,
                  "slot " + std::to_string(r.slot) + " at " + hex(r.guest_phys_addr) +
                      " was added without MemoryFlags::LogDirtyPages, so the pages the guest "
                      "writes there cannot be found");
    }
  }
}

// Copies the pages of `from` that hold anything into the zero-filled `to`: a sparse guest
// (most of a large one is untouched) keeps a sparse image.
void copy_nonzero_pages(std::span<const std::uint8_t> from, std::span<std::uint8_t> to) {
  for (std::size_t off = 0; off < from.size(); off += kPage) {
    if (!all_zero(from.data() + off, kPage)) std::memcpy(to.data() + off, from.data() + off, kPage);
  }
}

void copy_page(std::span<std::uint8_t> guest, const HostMapping& image, std::uint64_t page) {
  std::memcpy(guest.data() + page * kPage, image.data() + page * kPage, kPage);
}

}  // namespace

Snapshot::Snapshot(const Vm& vm, const GuestMemory& memory, const Vcpu& vcpu) : vm_(&vm) {
  check_tracked(memory);  // before anything changes on the VM
  if (vm.check_extension(abi::Cap::ManualDirtyLogProtect2) <= 0) {
    take_logged_memory(memory);
    take_vcpu(vcpu);
    return;
  }
  vm.enable_cap(abi::Cap::ManualDirtyLogProtect2,
                abi::to_underlying(abi::DirtyLogFlags::ManualProtectEnable));
  tracking_ = Tracking::ManualProtect;
  try {
    take_logged_memory(memory);
    take_vcpu(vcpu);
  } catch (...) {
    // A failed snapshot leaves the VM's dirty log as it found it (argument 0 turns it off).
    vm.enable_cap(abi::Cap::ManualDirtyLogProtect2, 0);
    throw;
  }
}

Snapshot::Snapshot(const Vm& vm, const GuestMemory& memory, const Vcpu& vcpu, DirtyRing& ring)
    : vm_(&vm), ring_(&ring), tracking_(Tracking::DirtyRing) {
  check_tracked(memory);
  add_slots(memory);
  discard_ring();  // before the copy: the guest is not running, so nothing is lost
  copy_memory();
  take_vcpu(vcpu);
}

std::uint64_t Snapshot::bytes() const noexcept {
  std::uint64_t n = 0;
  for (const Slot& s : slots_) n += s.host.size();
  return n;
}

// The dirty log's half of a snapshot's memory; the ring's constructor does the same with
// discard_ring(). Two paths rather than one switch on tracking_, so that each constructor
// names only the ioctls it can issue (the manual derives them from the calls).
void Snapshot::take_logged_memory(const GuestMemory& memory) {
  add_slots(memory);
  discard_log();  // before the copy: the guest is not running, so nothing is lost
  copy_memory();
}

void Snapshot::add_slots(const GuestMemory& memory) {
  for (const GuestMemory::Region& r : memory.regions()) {
    const std::uint64_t pages = r.host.size() / kPage;
    slots_.push_back(Slot{r.slot, r.guest_phys_addr, r.host, HostMapping(r.host.size()),
                          std::vector<std::uint64_t>((pages + 63) / 64),
                          std::vector<std::uint64_t>((pages + 63) / 64)});
  }
}

void Snapshot::copy_memory() {
  for (Slot& s : slots_) copy_nonzero_pages(s.host, s.image.bytes());
}

void Snapshot::take_vcpu(const Vcpu& vcpu) {
  regs_ = vcpu.regs();
  sregs_ = vcpu.sregs();
  events_ = vcpu.vcpu_events();
}

// Forget what was dirtied before the snapshot and re-arm tracking for it: the ring's entries,
// or each slot's log (cleared too, under manual protect).
void Snapshot::discard_ring() {
  if (ring_->harvest([](const DirtyGfn&) {}) > 0) vm_->reset_dirty_rings();
}

void Snapshot::discard_log() {
  for (Slot& s : slots_) {
    fetch_log(s);
    if (tracking_ == Tracking::ManualProtect)
      vm_->clear_dirty_log(s.slot, 0, static_cast<std::uint32_t>(s.host.size() / kPage), s.log);
  }
}

// KVM_GET_DIRTY_LOG into the slot's own bitmap (Vm::dirty_log() would allocate one per call).
void Snapshot::fetch_log(Slot& s) const {
  abi::kvm_dirty_log log{};
  log.slot = s.slot;
  log.dirty_bitmap = s.log.data();
  vm_->ioctl<abi::ioctl::GetDirtyLog>(log, "slot " + std::to_string(s.slot));
}

Snapshot::Slot& Snapshot::slot_by_number(std::uint32_t slot) {
  for (Slot& s : slots_) {
    if (s.slot == slot) return s;
  }
  throw Error(
      kWhat, EIO,
      "the dirty ring names slot " + std::to_string(slot) + ", which the snapshot does not cover");
}

void Snapshot::hold(std::size_t slot_index, std::uint64_t page) {
  std::uint64_t& word = slots_[slot_index].held[page / 64];
  const std::uint64_t bit = std::uint64_t{1} << (page % 64);
  if (word & bit) return;
  word |= bit;
  pending_.emplace_back(slot_index, page);
}

void Snapshot::mark_dirty(std::uint64_t gpa, std::uint64_t len) {
  if (len == 0) return;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (gpa < s.gpa || gpa - s.gpa >= s.host.size() || len > s.host.size() - (gpa - s.gpa))
      continue;
    const std::uint64_t first = (gpa - s.gpa) / kPage, last = (gpa - s.gpa + len - 1) / kPage;
    for (std::uint64_t p = first; p <= last; ++p) hold(i, p);
    return;
  }
  throw Error("kvm::Snapshot::mark_dirty", EFAULT,
              "[" + hex(gpa) + ", +" + std::to_string(len) +
                  " bytes) is not inside one region of the snapshot");
}

void Snapshot::collect() {
  if (tracking_ != Tracking::DirtyRing) return;
  std::size_t n = ring_->harvest([this](const DirtyGfn& g) {
    Slot& s = slot_by_number(g.slot);
    if (g.offset >= s.host.size() / kPage) {
      throw Error(kWhat, EIO,
                  "the dirty ring names page " + std::to_string(g.offset) + " of slot " +
                      std::to_string(g.slot) + ", which has " +
                      std::to_string(s.host.size() / kPage));
    }
    hold(static_cast<std::size_t>(&s - slots_.data()), g.offset);
  });
  if (n > 0) vm_->reset_dirty_rings();
  // KVM reports KVM_EXIT_DIRTY_RING_FULL while free entries remain (it keeps a reserve), so a
  // ring found completely full may have wrapped over frames that are lost now.
  if (n == ring_->entries()) {
    throw Error(kWhat, EOVERFLOW,
                "the dirty ring's " + std::to_string(n) +
                    " entries were all used, so frames may have been lost; restore cannot "
                    "know which pages to copy. Use a larger ring");
  }
}

// The pages of pending_, then forgotten.
std::size_t Snapshot::restore_held() {
  for (const auto& [index, page] : pending_) {
    Slot& s = slots_[index];
    copy_page(s.host, s.image, page);
    s.held[page / 64] = 0;
  }
  std::size_t n = pending_.size();
  pending_.clear();
  return n;
}

// The pages KVM_GET_DIRTY_LOG reports for `s` and pending_ does not hold; re-protects them.
std::size_t Snapshot::restore_logged(Slot& s) {
  fetch_log(s);
  std::size_t n = 0, first = s.log.size(), last = 0;
  for (std::size_t w = 0; w < s.log.size(); ++w) {
    if (s.log[w] == 0) continue;
    first = std::min(first, w);
    last = w;
    for (std::uint64_t bits = s.log[w] & ~s.held[w]; bits; bits &= bits - 1, ++n)
      copy_page(s.host, s.image, w * 64 + static_cast<unsigned>(__builtin_ctzll(bits)));
  }
  if (tracking_ == Tracking::ManualProtect && first <= last) {
    // Whole words from the first dirty one; KVM wants a multiple of 64 pages or the slot's end.
    const std::uint64_t first_page = first * 64;
    const std::uint64_t pages =
        std::min<std::uint64_t>((last - first + 1) * 64, s.host.size() / kPage - first_page);
    vm_->clear_dirty_log(s.slot, first_page, static_cast<std::uint32_t>(pages),
                         std::span(s.log).subspan(first));
  }
  return n;
}

std::size_t Snapshot::restore(Vcpu& vcpu) {
  collect();
  std::size_t n = 0;
  if (tracking_ != Tracking::DirtyRing) {
    for (Slot& s : slots_) n += restore_logged(s);
  }
  n += restore_held();
  vcpu.set_sregs(sregs_);
  vcpu.set_regs(regs_);
  vcpu.set_vcpu_events(events_);
  return n;
}

}  // namespace kvm

#endif  // __x86_64__

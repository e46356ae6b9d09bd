// The VM and vCPU ioctls rust-vmm's kvm-ioctls wraps on riscv64 that the other riscv64 tests do
// not reach (docs/kvm-ioctls.md): KVM_GET_MP_STATE, the coalesced MMIO zones,
// KVM_SET_USER_MEMORY_REGION2, KVM_CREATE_GUEST_MEMFD, the device attributes of a device every
// kernel has (kvm-vfio), and the interrupt ioctls on a VM without an in-kernel AIA.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "rv_guest.h"

using namespace testing;
using kvm::ExitReason;
namespace abi = kvm::abi;

namespace {

#define RV_SKIP(text)                              \
  do {                                             \
    std::fprintf(stderr, "SKIPPED: %s\n", (text)); \
    WARN(text);                                    \
    return;                                        \
  } while (0)

// The errno of a kvm::Error `f` throws whose message starts with `ioctl_name` (and, when
// `says` is given, contains it).
template <class F>
int error_of(const char* ioctl_name, F&& f, const char* says = nullptr) {
  try {
    f();
  } catch (const kvm::Error& e) {
    INFO(e.what());
    CHECK(std::strncmp(e.what(), ioctl_name, std::strlen(ioctl_name)) == 0);
    if (says) CHECK(std::strstr(e.what(), says) != nullptr);
    return e.code().value();
  }
  FAIL(ioctl_name << " did not fail");
  return 0;
}

}  // namespace

TEST_CASE("riscv64: KVM_GET_MP_STATE reads back what KVM_SET_MP_STATE set") {
  RvGuest g;
  kvm::Vcpu v = g.vm.create_vcpu(0);
  CHECK(v.mp_state() == abi::MpState::Runnable);
  v.set_mp_state(abi::MpState::Stopped);
  CHECK(v.mp_state() == abi::MpState::Stopped);
  v.set_mp_state(abi::MpState::Runnable);
  CHECK(v.mp_state() == abi::MpState::Runnable);
}

TEST_CASE("riscv64: writes to a coalesced MMIO zone wait in the ring instead of exiting") {
  RvGuest g;
  if (g.vm.check_extension(abi::Cap::CoalescedMmio) <= 0)
    RV_SKIP("KVM_CAP_COALESCED_MMIO = 0 on this kernel");
  constexpr std::uint64_t kZone = kMmioBase + 0x1000;
  g.vm.register_coalesced_mmio(kZone, 0x100);
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.li(Reg::t0, kZone);
    a.li(Reg::t1, 0x1122334455667788);
    a.store(4, Reg::t1, Reg::t0, 0);
    a.store(8, Reg::t1, Reg::t0, 0x8);
    a.store(1, Reg::t1, Reg::t0, 0xff);
    a.li(Reg::t2, kMmioBase);
    a.store(4, Reg::t1, Reg::t2, 0);  // outside the zone: an exit
    a.store(4, Reg::t1, Reg::t0, 0);  // inside, but the zone is gone by then
    sbi_shutdown(a);
  });
  kvm::CoalescedRing ring(v);
  kvm::Exit e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kMmioBase);
  struct Seen {
    std::uint64_t addr;
    std::vector<std::uint8_t> data;
  };
  std::vector<Seen> seen;
  ring.drain([&](const kvm::CoalescedWrite& w) {
    CHECK_FALSE(w.pio);
    seen.push_back({w.addr, {w.data.begin(), w.data.end()}});
  });
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].addr == kZone);
  CHECK(seen[0].data == std::vector<std::uint8_t>{0x88, 0x77, 0x66, 0x55});
  CHECK(seen[1].addr == kZone + 8);
  CHECK(seen[1].data == std::vector<std::uint8_t>{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11});
  CHECK(seen[2].addr == kZone + 0xff);
  CHECK(seen[2].data == std::vector<std::uint8_t>{0x88});
  g.vm.unregister_coalesced_mmio(kZone, 0x100);
  e = RvGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kZone);
  CHECK(ring.drain([](const kvm::CoalescedWrite&) {}) == 0);
  CHECK(RvGuest::run(v).reason() == ExitReason::SystemEvent);
}

TEST_CASE("riscv64: a KVM_SET_USER_MEMORY_REGION2 slot is memory the guest writes") {
  RvGuest g;
  if (g.vm.check_extension(abi::Cap::UserMemory2) <= 0)
    RV_SKIP("KVM_CAP_USER_MEMORY2 = 0 on this kernel (Linux 6.8+)");
  constexpr std::uint64_t kData = 0x90000000, kSize = 64 << 10;
  void* host = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(host != MAP_FAILED);
  kvm::MemoryRegion r;
  r.slot = g.vm.memory_regions().back().slot + 1;
  r.guest_phys_addr = kData;
  r.size = kSize;
  r.host_addr = host;
  g.vm.set_user_memory_region2(r);
  REQUIRE(g.vm.memory_region(r.slot) != nullptr);
  kvm::Vcpu v = g.start([](Assembler& a) {
    a.li(Reg::t0, kData);
    a.li(Reg::t1, 0x0123456789abcdef);
    a.store(8, Reg::t1, Reg::t0, 0x10);
    sbi_shutdown(a);
  });
  CHECK(RvGuest::run(v).reason() == ExitReason::SystemEvent);  // no MMIO exit: memory
  std::uint64_t got = 0;
  std::memcpy(&got, static_cast<std::uint8_t*>(host) + 0x10, 8);
  CHECK(got == 0x0123456789abcdef);
  g.vm.delete_memory_region(r.slot);
  ::munmap(host, kSize);
}

TEST_CASE("riscv64: KVM_CREATE_GUEST_MEMFD where the kernel has it, else an error naming the cap") {
  RvGuest g;
  const int cap = g.vm.check_extension(abi::Cap::GuestMemfd);
  std::fprintf(stderr, "NOTE: riscv64 KVM_CAP_GUEST_MEMFD = %d\n", cap);
  if (cap <= 0) {
    CHECK_THROWS_WITH(g.vm.create_guest_memfd(64 << 10),
                      "KVM_CREATE_GUEST_MEMFD: Invalid argument (0x10000 bytes, flags 0x0; "
                      "KVM_CAP_GUEST_MEMFD is not supported here)");
    return;
  }
  kvm::GuestMemfd m = g.vm.create_guest_memfd(64 << 10);
  CHECK(m.fd() >= 0);
  CHECK(m.size() == 64 << 10);
}

TEST_CASE("riscv64: device attributes of a kvm-vfio device") {
  RvGuest g;
  if (!g.vm.supports_device(abi::DeviceType::Vfio))
    RV_SKIP("KVM_CREATE_DEVICE_TEST: no KVM_DEV_TYPE_VFIO on this kernel");
  kvm::Device vfio = g.vm.create_device(abi::DeviceType::Vfio);
  namespace c = abi::consts;
  CHECK(vfio.has_attr(c::DevVfioFile, c::DevVfioFileAdd));
  CHECK(vfio.has_attr(c::DevVfioFile, c::DevVfioFileDel));
  CHECK_FALSE(vfio.has_attr(0x7fff, 0));
  // FILE_ADD takes a VFIO file's fd; an eventfd is not one.
  int efd = eventfd(0, EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  std::int32_t fd = efd;
  int err = error_of("KVM_SET_DEVICE_ATTR",
                     [&] { vfio.set_attr(c::DevVfioFile, c::DevVfioFileAdd, &fd); });
  CHECK(err == EINVAL);
  close(efd);
  std::int32_t value = 0;
  err = error_of("KVM_GET_DEVICE_ATTR",
                 [&] { vfio.get_attr(c::DevVfioFile, c::DevVfioFileAdd, &value); });
  CHECK(err == EPERM);  // kvm-vfio has no readable attributes
}

TEST_CASE("riscv64: without an in-kernel AIA the interrupt ioctls refuse, irqfds still register") {
  RvGuest g;
  if (g.vm.check_extension(abi::Cap::Irqchip) > 0)
    RV_SKIP("this host has an in-kernel AIA (KVM_CAP_IRQCHIP = 1): see aia_test.cc");
  // Each error names the missing interrupt controller, not only the errno: KVM_SIGNAL_MSI's
  // and KVM_SET_GSI_ROUTING's own caps read 1 here.
  constexpr const char* kNoIrqchip = "KVM_CAP_IRQCHIP is not supported here";
  CHECK(error_of(
            "KVM_IRQ_LINE", [&] { g.vm.irq_line(5, true); }, kNoIrqchip) == ENXIO);
  CHECK(error_of(
            "KVM_SIGNAL_MSI", [&] { g.vm.signal_msi(0x28000000, 1); }, kNoIrqchip) == EINVAL);
  kvm::IrqRouting routing;
  abi::kvm_irq_routing_entry msi{};
  msi.gsi = 1;
  msi.type = abi::to_underlying(abi::IrqRoutingType::Msi);
  routing.push_back(msi);
  CHECK(error_of(
            "KVM_SET_GSI_ROUTING", [&] { g.vm.set_gsi_routing(routing); }, kNoIrqchip) == EINVAL);
  int efd = eventfd(0, EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  g.vm.irqfd(efd, 5);
  CHECK(error_of("KVM_IRQFD", [&] { g.vm.irqfd(efd, 6); }) == EBUSY);  // one gsi per eventfd
  g.vm.irqfd_deassign(efd, 5);
  g.vm.irqfd(efd, 6);  // free again
  g.vm.irqfd_deassign(efd, 6);
  close(efd);
}

// Limits and checks of setup input, each failing in our own check with a message that says
// what was wrong and what the limit is, before the kernel sees the call: the MSR table's
// limit, null host memory, address spaces in slot ids, resizing a slot, irqfd without an
// irqchip.
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

#include "guest.h"
#include "kvm/format.h"

namespace abi = kvm::abi;

namespace {

kvm::MemoryRegion region(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size, void* host) {
  kvm::MemoryRegion r;
  r.slot = slot;
  r.guest_phys_addr = gpa;
  r.size = size;
  r.host_addr = host;
  return r;
}

std::string hex_of(const void* p) { return kvm::detail::hex(reinterpret_cast<std::uintptr_t>(p)); }

}  // namespace

TEST_CASE("limits: a Msrs table holds the 255 MSRs the kernel accepts, and refuses the 256th") {
  kvm::Msrs msrs;
  for (int i = 0; i < 255; ++i) msrs.push_back(abi::kvm_msr_entry{0x10, 0, 0});  // IA32_TSC
  CHECK(msrs.size() == 255);
  CHECK_THROWS_WITH(
      msrs.push_back(abi::kvm_msr_entry{0x10, 0, 0}),
      "kvm::FlexBuffer: Argument list too long (256 entries > the kernel's limit of 255)");
  CHECK_THROWS_WITH(kvm::Msrs(256), Catch::Contains("256 entries > the kernel's limit of 255"));
  CHECK(msrs.size() == 255);  // the refused entry left nothing behind
  // The kernel takes the full table (E2BIG is for 256 and more); on hosts whose MSR ioctls
  // fail for other reasons (some PVM hosts say EINVAL) it is at least not E2BIG.
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  try {
    CHECK(vcpu.get_msrs(msrs) == 255);
  } catch (const kvm::Error& e) {
    KVM_TEST_NOTE("KVM_GET_MSRS of 255 MSRs: " << e.what());
    CHECK(e.errno_value() != E2BIG);
  }
}

TEST_CASE("limits: memory regions with null, unaligned or resized host memory") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::HostMapping m(1 << 20);
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(0, 0, 0x1000, nullptr)),
                    "KVM_SET_USER_MEMORY_REGION: Bad address (slot 0: host address is null)");
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(0, 0, 0x1000, m.data() + 0x10)),
                    "KVM_SET_USER_MEMORY_REGION: Invalid argument (slot 0: host address " +
                        hex_of(m.data() + 0x10) + " is not 4 KiB aligned)");
  CHECK(vm.memory_regions().empty());

  vm.set_user_memory_region(region(3, 0x100000, 0x40000, m.data()));
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(3, 0x100000, 0x80000, m.data())),
                    "KVM_SET_USER_MEMORY_REGION: Invalid argument (slot 3: KVM cannot resize a "
                    "slot (0x40000 -> 0x80000 bytes); delete the slot first "
                    "(delete_memory_region()) and set it again)");
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(3, 0x100000, 0x40000, m.data() + 0x40000)),
                    Catch::Contains("slot 3: KVM cannot change a slot's host memory (" +
                                    hex_of(m.data()) + " -> " + hex_of(m.data() + 0x40000) + ")"));
  auto readonly = region(3, 0x100000, 0x40000, m.data());
  readonly.flags = abi::MemoryFlags::Readonly;
  if (sys.check_extension(abi::Cap::ReadonlyMem) > 0) {
    CHECK_THROWS_WITH(vm.set_user_memory_region(readonly),
                      Catch::Contains("KVM cannot change a slot's KVM_MEM_READONLY flag"));
  }
  // What KVM can change: the guest address (a move) and dirty logging.
  vm.set_user_memory_region(region(3, 0x200000, 0x40000, m.data()));
  auto logged = region(3, 0x200000, 0x40000, m.data());
  logged.flags = abi::MemoryFlags::LogDirtyPages;
  vm.set_user_memory_region(logged);
  REQUIRE(vm.memory_region(3) != nullptr);
  CHECK(vm.memory_region(3)->guest_phys_addr == 0x200000);
  // After deleting, the slot can be set again with any size.
  vm.delete_memory_region(3);
  vm.set_user_memory_region(region(3, 0x100000, 0x80000, m.data()));
  CHECK(vm.memory_region(3)->size == 0x80000);
}

TEST_CASE("limits: a slot id's address space must be one the host has") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::HostMapping m(0x1000);
  int spaces = vm.check_extension(abi::Cap::MultiAddressSpace);
  int have = spaces > 1 ? spaces : 1;
  const std::uint32_t id = (static_cast<std::uint32_t>(have) << 16) | 5;  // one past the last
  CHECK_THROWS_WITH(
      vm.set_user_memory_region(region(id, 0, 0x1000, m.data())),
      "KVM_SET_USER_MEMORY_REGION: Invalid argument (slot " + std::to_string(id) +
          " = (address space " + std::to_string(have) + " << 16) | slot 5: the host has " +
          std::to_string(have) +
          " address space(s) (KVM_CAP_MULTI_ADDRESS_SPACE = " + std::to_string(spaces) + "))");
  CHECK(vm.memory_regions().empty());
  if (have > 1) {  // the last address space the host has is accepted
    const std::uint32_t last = (static_cast<std::uint32_t>(have - 1) << 16) | 5;
    vm.set_user_memory_region(region(last, 0, 0x1000, m.data()));
    CHECK(vm.memory_region(last) != nullptr);
  }
}

TEST_CASE("limits: KVM_IRQFD without an in-kernel irqchip says that it needs one") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::Irqfd);
  kvm::Vm vm = sys.create_vm();
  int efd = ::eventfd(0, EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  CHECK_THROWS_WITH(vm.irqfd(efd, 5),
                    "KVM_IRQFD: Invalid argument (gsi 5; the VM has no in-kernel irqchip: call "
                    "create_irqchip() (or enable KVM_CAP_SPLIT_IRQCHIP) before KVM_IRQFD)");
  vm.create_irqchip();
  CHECK_NOTHROW(vm.irqfd(efd, 5));
  vm.irqfd_deassign(efd, 5);
  ::close(efd);
}

// Error paths on any arch (aarch64 and riscv64 under tools/qemu/): bad input is refused with
// an error naming what was wrong, before the kernel sees it; failures leave nothing behind;
// exit data is only read through the matching accessor.
#include <dirent.h>
#include <fcntl.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "portable_guest.h"

using namespace testing::portable;
namespace abi = kvm::abi;

namespace {

int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;  // the directory's own fd
}

kvm::MemoryRegion region(kvm::HostMapping& m, std::uint32_t slot, std::uint64_t gpa,
                         std::uint64_t size) {
  kvm::MemoryRegion r;
  r.slot = slot;
  r.guest_phys_addr = gpa;
  r.size = size;
  r.host_addr = m.data();
  return r;
}

}  // namespace

TEST_CASE("portable: every fd is close-on-exec") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  for (int fd : {sys.fd(), vm.fd(), vcpu.fd()}) {
    INFO("fd " << fd);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  }
}

TEST_CASE("portable: bad vCPU ids and memory regions are refused with the reason") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  // riscv64 kernels answer 0 for KVM_CAP_MAX_VCPU_ID; the runtime then checks against
  // KVM_CAP_MAX_VCPUS, as the kernel does.
  int max_id = vm.check_extension(abi::Cap::MaxVcpuId);
  std::string cap = "KVM_CAP_MAX_VCPU_ID";
  if (max_id <= 0) {
    max_id = vm.check_extension(abi::Cap::MaxVcpus);
    cap = "KVM_CAP_MAX_VCPUS";
  }
  REQUIRE(max_id > 0);
  CHECK_THROWS_WITH(vm.create_vcpu(static_cast<unsigned>(max_id)),
                    "KVM_CREATE_VCPU: Invalid argument (vcpu id " + std::to_string(max_id) +
                        " >= " + cap + " " + std::to_string(max_id) + ")");
  vm.create_vcpu(0);
  CHECK_THROWS_WITH(vm.create_vcpu(0), "KVM_CREATE_VCPU: File exists (vcpu id 0)");

  kvm::HostMapping m(1 << 20);
  vm.set_user_memory_region(region(m, 1, 0x100000, 0x80000));
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(m, 3, 0x140000, 0x80000)),
                    Catch::Contains("overlaps slot 1 [0x100000, 0x180000)"));
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(m, 2, 0x1234, 0x1000)),
                    Catch::Contains("guest address 0x1234 is not 4 KiB aligned"));
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(m, 2, 0x200000, 0x1001)),
                    Catch::Contains("size 0x1001 is not a multiple of 4 KiB"));
  int slots = vm.check_extension(abi::Cap::NrMemslots);
  CHECK_THROWS_WITH(
      vm.set_user_memory_region(region(m, static_cast<std::uint32_t>(slots), 0x400000, 0x1000)),
      Catch::Contains(">= KVM_CAP_NR_MEMSLOTS"));
  CHECK(vm.memory_regions().size() == 1);  // nothing half-registered
}

TEST_CASE("portable: the last page below phys_addr_bits() is accepted, the next one refused") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  unsigned bits = vm.phys_addr_bits();
  std::uint64_t top = std::uint64_t{1} << bits;
  kvm::HostMapping m(0x2000);
  // The runtime refuses what reaches past the width it reports...
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(m, 1, top - 0x1000, 0x2000)),
                    Catch::EndsWith(std::to_string(bits) + "-bit physical address space)"));
  // ...and what it lets through, the kernel takes: the width is the VM's, not a guess.
  vm.set_user_memory_region(region(m, 1, top - 0x2000, 0x2000));
  CHECK(vm.memory_regions().size() == 1);
}

TEST_CASE("portable: a failed vCPU creation and 200 VM lifecycles leave no fd behind") {
  kvm::System sys;
  int before = open_fds();
  {
    kvm::Vm vm = sys.create_vm();
    vm.create_vcpu(0);
    CHECK_THROWS_AS(vm.create_vcpu(0), kvm::Error);
  }
  CHECK(open_fds() == before);
  for (int i = 0; i < 200; ++i) {
    Guest g;
    kvm::Vcpu v = start_spin(g);
  }
  CHECK(open_fds() == before);
}

TEST_CASE("portable: guest memory access is bounds-checked") {
  Guest g;
  CHECK_NOTHROW(g.mem.span(kRamBase + kRamSize - 8, 8));
  CHECK_THROWS_AS(g.mem.span(kRamBase + kRamSize - 8, 9), kvm::Error);
  CHECK_THROWS_AS(g.mem.span(kRamBase - 1, 2), kvm::Error);
  CHECK_THROWS_AS(g.mem.span(~0ull - 3, 8), kvm::Error);  // wraps
  CHECK_THROWS_AS(g.mem.read_obj<std::uint64_t>(kMmioBase), kvm::Error);
}

TEST_CASE("portable: an exit is read only through its own accessor") {
  Guest g;
  kvm::Vcpu v = start_stores(g, {{kMmioBase, 5}});
  kvm::Exit e = Guest::run(v);
  REQUIRE(e.reason() == kvm::ExitReason::Mmio);
  CHECK(e.mmio().value() == 5);
  CHECK_THROWS_AS(e.io(), kvm::WrongExitError);
  CHECK_THROWS_AS(e.system_event(), kvm::WrongExitError);
  CHECK_THROWS_AS(e.internal_error(), kvm::WrongExitError);
}

TEST_CASE("portable: an ioeventfd of a length KVM cannot match is refused") {
  Guest g;
  CHECK_THROWS_WITH(g.vm.ioeventfd({.addr = kMmioBase, .length = 3, .eventfd = 0}),
                    Catch::Contains("KVM_IOEVENTFD"));
}

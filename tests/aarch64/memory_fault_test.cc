// KVM_EXIT_MEMORY_FAULT from a real kernel: a guest load from a guest_memfd slot whose page KVM
// cannot get. Since Linux 6.18 arm64 runs ordinary VMs from guest_memfd; a stage-2 fault on
// such a slot goes to gmem_abort() (arch/arm64/kvm/mmu.c), which calls kvm_gmem_get_pfn() and,
// when that fails, fills kvm_run->memory_fault (kvm_prepare_memory_fault_exit(): the faulting
// IPA, which is page aligned, PAGE_SIZE, flags 0 since the page is not private) and returns
// the error from KVM_RUN. kvm_gmem_get_pfn() (virt/kvm/guest_memfd.c) fails with
//   - EFAULT once the slot's guest_memfd file is released (every mapping unmapped and every fd
//     closed): kvm_gmem_release() clears the slot's file and zaps its stage-2 mappings;
//   - EHWPOISON for a folio marked poisoned, here by MADV_HWPOISON (CONFIG_MEMORY_FAILURE).
// arm64 does not report KVM_CAP_MEMORY_FAULT_INFO (only x86 does; Debian's 7.2 arm64 kernel
// says 0) but fills the exit all the same, so these tests skip only without mappable,
// initially shared guest_memfd (KVM_CAP_GUEST_MEMFD_FLAGS: bookworm's 6.1 and trixie's 6.12).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "arm_guest.h"

using namespace testing;
using kvm::ExitReason;

namespace {

constexpr std::uint64_t kGmemBase = 0x50000000;  // the guest_memfd slot, above RAM
constexpr std::uint64_t kGmemSize = 0x10000;
constexpr std::uint64_t kMmap = kvm::abi::consts::GuestMemfdFlagMmap;
constexpr std::uint64_t kInitShared = kvm::abi::consts::GuestMemfdFlagInitShared;
constexpr std::uint64_t kMarker = 0x1122334455667788;

// Whether this kernel runs an ordinary VM from guest_memfd; prints the skip reason if not.
bool guest_memfd_vm(const kvm::Vm& vm) {
  int have = vm.check_extension(kvm::abi::Cap::GuestMemfd);
  int flags = have > 0 ? vm.check_extension(kvm::abi::Cap::GuestMemfdFlags) : 0;
  if (have <= 0 ||
      (static_cast<std::uint64_t>(flags) & (kMmap | kInitShared)) != (kMmap | kInitShared)) {
    std::fprintf(stderr,
                 "SKIPPED: KVM_CAP_GUEST_MEMFD = %d, KVM_CAP_GUEST_MEMFD_FLAGS = %d: no "
                 "mappable, initially shared guest_memfd on this kernel (Linux 6.18+)\n",
                 have, flags);
    WARN("no GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED on this kernel");
    return false;
  }
  std::fprintf(stderr, "NOTE: KVM_CAP_MEMORY_FAULT_INFO = %d on this kernel\n",
               vm.check_extension(kvm::abi::Cap::MemoryFaultInfo));
  return true;
}

// A shared mapping of the whole guest_memfd and a slot of it at kGmemBase (slot 1; ArmGuest's
// RAM is slot 0). Returns the mapping.
std::uint8_t* map_slot(kvm::Vm& vm, const kvm::GuestMemfd& memfd) {
  void* p = ::mmap(nullptr, kGmemSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.fd(), 0);
  REQUIRE(p != MAP_FAILED);
  kvm::MemoryRegion r;
  r.slot = 1;
  r.guest_phys_addr = kGmemBase;
  r.size = kGmemSize;
  r.host_addr = p;
  r.guest_memfd = memfd.fd();
  vm.set_user_memory_region2(r);
  return static_cast<std::uint8_t*>(p);
}

// Guest: loads 8 bytes from the slot's first page and stores them to kMmioBase (an MMIO exit
// the VMM checks), then loads from `target` (the instruction at `*fault_pc`) and powers off.
kvm::Vcpu start(ArmGuest& g, std::uint64_t target, std::uint64_t* fault_pc) {
  kvm::Vcpu v = g.start([&](Assembler& a) {
    a.mov(x(1), kGmemBase);
    a.ldr(8, x(2), x(1));
    a.mov(x(3), kMmioBase);
    a.str(8, x(2), x(3));
    a.mov(x(4), target);
    *fault_pc = kRamBase + a.size();
    a.ldr(8, x(5), x(4));
    system_off(a);
  });
  return v;
}

// The first run: the guest read the host's marker from guest_memfd and stored it as MMIO.
void expect_marker_exit(kvm::Vcpu& v) {
  kvm::Exit e = ArmGuest::run(v);
  REQUIRE(e.reason() == ExitReason::Mmio);
  CHECK(e.mmio().phys_addr() == kMmioBase);
  REQUIRE(e.mmio().is_write());
  REQUIRE(e.mmio().len() == 8);
  CHECK(e.mmio().value() == kMarker);
}

// The run that faults at `target`: KVM_RUN failed with `err` and a memory-fault exit for the
// page of `target`; the vCPU stays at the faulting load.
void expect_memory_fault(kvm::Vcpu& v, std::uint64_t target, std::uint64_t fault_pc, int err) {
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  kvm::Exit e = ArmGuest::run(v);
  INFO("exit " << e.name() << ", KVM_RUN errno " << e.run_errno());
  REQUIRE(e.reason() == ExitReason::MemoryFault);
  CHECK(e.name() == "KVM_EXIT_MEMORY_FAULT");
  CHECK(e.run_errno() == err);
  kvm::MemoryFaultExit f = e.memory_fault();
  CHECK(f.gpa == (target & ~(page - 1)));
  CHECK(f.size == page);
  CHECK(f.flags == 0);
  CHECK_FALSE(f.is_private());
  CHECK(f.run_errno == err);
  CHECK(v.one_reg_u64(kvm::aarch64::kRegPc) == fault_pc);
}

}  // namespace

TEST_CASE("aarch64: a load from a released guest_memfd is KVM_EXIT_MEMORY_FAULT with EFAULT") {
  ArmGuest g;
  if (!guest_memfd_vm(g.vm)) return;
  std::uint8_t* host = nullptr;
  {
    kvm::GuestMemfd memfd = g.vm.create_guest_memfd(kGmemSize, kMmap | kInitShared);
    host = map_slot(g.vm, memfd);
    std::memcpy(host, &kMarker, sizeof kMarker);
  }  // the fd is closed here; the mapping keeps the file
  const std::uint64_t target = kGmemBase + 0x2230;
  std::uint64_t fault_pc = 0;
  kvm::Vcpu v = start(g, target, &fault_pc);
  expect_marker_exit(v);
  // The last reference goes: kvm_gmem_release() unbinds the slot, which stays in place.
  REQUIRE(::munmap(host, kGmemSize) == 0);
  expect_memory_fault(v, target, fault_pc, EFAULT);
  // Nothing changed, so the next run reports the same fault.
  expect_memory_fault(v, target, fault_pc, EFAULT);
}

TEST_CASE("aarch64: a load from a poisoned guest_memfd page is KVM_EXIT_MEMORY_FAULT, EHWPOISON") {
  ArmGuest g;
  if (!guest_memfd_vm(g.vm)) return;
  kvm::GuestMemfd memfd = g.vm.create_guest_memfd(kGmemSize, kMmap | kInitShared);
  std::uint8_t* host = map_slot(g.vm, memfd);
  std::memcpy(host, &kMarker, sizeof kMarker);
  const std::uint64_t target = kGmemBase + 0x3230;
  // A child poisons the target's page through a mapping of its own: memory_failure() may
  // SIGBUS the processes that map the page, and this one never touches it. Its exit status
  // is madvise()'s errno, 0 for success.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    void* p = ::mmap(nullptr, kGmemSize, PROT_READ, MAP_SHARED, memfd.fd(), 0);
    if (p == MAP_FAILED) _exit(100);
    char* page = static_cast<char*>(p) + (target - kGmemBase) / 4096 * 4096;
    _exit(::madvise(page, 4096, MADV_HWPOISON) == 0 ? 0 : errno);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("the child's wait status " << status);
  REQUIRE(WIFEXITED(status));
  int madvise_errno = WEXITSTATUS(status);
  REQUIRE(madvise_errno != 100);  // its mmap() failed
  if (madvise_errno == EINVAL) {
    std::fprintf(stderr,
                 "SKIPPED: MADV_HWPOISON refused with EINVAL: no CONFIG_MEMORY_FAILURE here\n");
    WARN("no MADV_HWPOISON on this kernel");
    return;
  }
  // Debian's 7.2 answers EBUSY, and the folio is poisoned all the same: memory_failure() sets
  // the flag before it tries to recover the page, and guest_memfd's error_remove_folio()
  // answers MF_DELAYED (it leaves the folio for KVM to refuse), which a truncate_error_folio()
  // that does not know MF_DELAYED takes for a failure. The poison is what the load meets.
  CHECK((madvise_errno == 0 || madvise_errno == EBUSY));
  if (madvise_errno == EBUSY) std::fprintf(stderr, "NOTE: MADV_HWPOISON returned EBUSY\n");
  std::uint64_t fault_pc = 0;
  kvm::Vcpu v = start(g, target, &fault_pc);
  expect_marker_exit(v);
  expect_memory_fault(v, target, fault_pc, EHWPOISON);
  ::munmap(host, kGmemSize);
}

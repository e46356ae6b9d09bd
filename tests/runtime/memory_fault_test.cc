// Exit data of the reasons the newest headers add, decoded from fixtures of kvm_run data:
// KVM_EXIT_MEMORY_FAULT (which Vcpu::run() returns for KVM_RUN's EFAULT/EHWPOISON), IOCSR,
// TDX, ARM SEA, ARM LDST64B and SNP certificate requests.
//
// No real guest here: this host (Linux 6.18.44 with PVM, x86_64) reports
// KVM_CAP_MEMORY_FAULT_INFO = 1 but no way we found makes KVM_RUN fail with it. A probe ran a
// 64-bit guest that loads, or stores, 8 bytes at gpa 0x10001230 of a 2 MiB slot at 0x10000000
// (its code in another slot), with the slot's host memory made unusable each of these ways:
//   - anonymous PROT_NONE; anonymous PROT_READ (store); mprotect(PROT_NONE) after the slot was
//     set; munmap() after the slot was set; a MAP_SHARED memfd mapping beyond its EOF;
//   - KVM_MEM_READONLY (store);
//   - a guest_memfd slot (KVM_SET_USER_MEMORY_REGION2) created with GUEST_MEMFD_FLAG_MMAP but
//     not INIT_SHARED (its mapping cannot be faulted in); one with MMAP | INIT_SHARED whose
//     mapping was unmapped and whose fd was closed, so the slot's guest_memfd is released;
//   - MADV_HWPOISON on a page of the slot (anonymous and guest_memfd): refused with EINVAL, the
//     kernel has no memory_failure (CONFIG_MEMORY_FAILURE off).
// Every case that cannot be faulted in returned 0 from KVM_RUN with KVM_EXIT_MMIO at
// 0x10001230 (len 8, is_write as the access), and the guest went on after the VMM answered;
// the readable ones (PROT_READ load, READONLY load) simply ran. None gave EFAULT/EHWPOISON or
// KVM_EXIT_MEMORY_FAULT. The private/shared mismatches that report it need
// KVM_CAP_MEMORY_ATTRIBUTES (0 here) or a confidential VM type (KVM_CAP_VM_TYPES = 0x1, the
// default only). So on this host Vcpu::run()'s handling is tested on fixtures of kvm_run data.
//
// A real kernel does report it on arm64: tests/aarch64/memory_fault_test.cc runs in QEMU
// (tools/qemu/) on Debian's 7.2, where a guest_memfd slot of an ordinary VM faults through
// gmem_abort(), and a load from a page whose guest_memfd was released, or was poisoned with
// MADV_HWPOISON, fails KVM_RUN with EFAULT or EHWPOISON and KVM_EXIT_MEMORY_FAULT (page-aligned
// gpa, PAGE_SIZE, flags 0), although arm64 reports KVM_CAP_MEMORY_FAULT_INFO = 0.
#include <catch2/catch.hpp>

#include <cerrno>
#include <vector>

#include "kvm/exit.h"

namespace abi = kvm::abi;
using kvm::ExitReason;

TEST_CASE("memory fault: a fixture of kvm_run data decodes the private flag and EHWPOISON") {
  std::vector<std::uint64_t> page(4096 / 8);
  auto& run = *reinterpret_cast<abi::kvm_run*>(page.data());
  run.exit_reason = abi::to_underlying(ExitReason::MemoryFault);
  run.memory_fault.gpa = 0x80000000;
  run.memory_fault.size = 0x200000;
  run.memory_fault.flags = abi::consts::MemoryExitFlagPrivate;
  kvm::Exit e(run, 4096, kvm::RunStatus::Exited, EHWPOISON);
  CHECK(e.name() == "KVM_EXIT_MEMORY_FAULT");
  kvm::MemoryFaultExit f = e.memory_fault();
  CHECK(f.gpa == 0x80000000);
  CHECK(f.size == 0x200000);
  CHECK(f.is_private());
  CHECK(f.run_errno == EHWPOISON);
  run.exit_reason = abi::to_underlying(ExitReason::Mmio);
  CHECK_THROWS_WITH(e.memory_fault(),
                    "Exit::memory_fault(): this exit is KVM_EXIT_MMIO, not KVM_EXIT_MEMORY_FAULT");
}

TEST_CASE("exits of the newest headers: each accessor checks its reason and its bounds") {
  std::vector<std::uint64_t> page(4096 / 8);
  auto& run = *reinterpret_cast<abi::kvm_run*>(page.data());
  kvm::Exit e(run, 4096, kvm::RunStatus::Exited);
  auto as = [&](ExitReason r) { run.exit_reason = abi::to_underlying(r); };

  as(ExitReason::LoongarchIocsr);
  run.iocsr_io.len = 8;
  run.iocsr_io.phys_addr = 0x420;
  CHECK(e.loongarch_iocsr().phys_addr == 0x420);
  run.iocsr_io.len = 9;
  CHECK_THROWS_WITH(e.loongarch_iocsr(), "Exit::loongarch_iocsr(): length 9 exceeds 8");

  as(ExitReason::Tdx);
  run.tdx.nr = 0x10002;
  CHECK(e.tdx().nr == 0x10002);
  CHECK(&e.tdx() == &run.tdx);
  as(ExitReason::ArmSea);
  run.arm_sea.esr = 0x96000010;
  CHECK(e.arm_sea().esr == 0x96000010);
  as(ExitReason::ArmLdst64b);
  run.arm_nisv.fault_ipa = 0x9000000;
  CHECK(e.arm_ldst64b().fault_ipa == 0x9000000);
  CHECK_THROWS_AS(e.arm_nisv(), kvm::WrongExitError);
  as(ExitReason::SnpReqCerts);
  run.snp_req_certs.npages = 4;
  CHECK(e.snp_req_certs().npages == 4);

  // Each refuses the others' exits, and an interrupted run.
  as(ExitReason::Hlt);
  CHECK_THROWS_WITH(e.tdx(), "Exit::tdx(): this exit is KVM_EXIT_HLT, not KVM_EXIT_TDX");
  CHECK_THROWS_AS(e.arm_sea(), kvm::WrongExitError);
  CHECK_THROWS_AS(e.arm_ldst64b(), kvm::WrongExitError);
  CHECK_THROWS_AS(e.snp_req_certs(), kvm::WrongExitError);
  CHECK_THROWS_AS(e.loongarch_iocsr(), kvm::WrongExitError);
  as(ExitReason::SnpReqCerts);
  kvm::Exit interrupted(run, 4096, kvm::RunStatus::Interrupted, EINTR);
  CHECK_THROWS_AS(interrupted.snp_req_certs(), kvm::WrongExitError);
}

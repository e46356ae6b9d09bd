// Sync regs on demand: a VMM that never reads registers has KVM copy nothing at its exits; one
// that reads them gets the copy from the next run on, and stops paying once it stops reading.
#include <catch2/catch.hpp>

#include <cstring>

#include "guest.h"

using namespace testing;
using kvm::ExitReason;
namespace abi = kvm::abi;

namespace {

constexpr std::uint64_t kRegs = abi::to_underlying(abi::SyncRegs::Regs);
constexpr std::uint64_t kSregs = abi::to_underlying(abi::SyncRegs::Sregs);
constexpr std::uint64_t kEvents = abi::to_underlying(abi::SyncRegs::Events);

// A guest that outs rax to port 0x50 and increments it, forever.
void count_out(Assembler& a) {
  auto top = a.new_label();
  a.bind(top);
  a.out(Width::k8, 0x50);
  a.inc(Reg::Rax);
  a.jmp(top);
}

std::uint64_t next_out(LongModeGuest& g) {
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);
  REQUIRE(e.io().port() == 0x50);
  return e.io().value();
}

abi::kvm_regs regs_by_ioctl(const kvm::Vcpu& v) {
  abi::kvm_regs r{};
  v.ioctl<abi::ioctl::GetRegs>(r);
  return r;
}

}  // namespace

TEST_CASE("sync regs on demand: nothing is requested until registers are read") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  REQUIRE((g.vcpu.sync_regs_mask() & (kRegs | kSregs)) == (kRegs | kSregs));
  for (int i = 0; i < 3 * static_cast<int>(kvm::Vcpu::kSyncWindowRuns); ++i) next_out(g);
  CHECK(g.vcpu.sync_regs_requested() == 0);
  CHECK(g.vcpu.run_struct().kvm_valid_regs == 0);  // what KVM read at the last KVM_RUN
}

TEST_CASE("sync regs on demand: a read requests the group; the copy then tracks the guest") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  CHECK(next_out(g) == 0);
  // First read at this exit: the ioctl, and from now on KVM copies the registers out.
  CHECK(g.vcpu.regs().rax == 0);
  CHECK(g.vcpu.sync_regs_requested() == kRegs);
  for (std::uint64_t want = 1; want < 100; ++want) {
    CHECK(next_out(g) == want);
    CHECK(g.vcpu.run_struct().kvm_valid_regs == kRegs);
    // The copy KVM left in kvm_run is what regs() returns, and equals the ioctl's answer.
    abi::kvm_regs synced = g.vcpu.regs();
    abi::kvm_regs ioctl = regs_by_ioctl(g.vcpu);
    REQUIRE(std::memcmp(&synced, &g.vcpu.run_struct().s.regs.regs, sizeof synced) == 0);
    REQUIRE(std::memcmp(&synced, &ioctl, sizeof synced) == 0);
    REQUIRE(synced.rax == want);
  }
  // A write goes back through kvm_run: the guest outs the new value next.
  abi::kvm_regs r = g.vcpu.regs();
  r.rax = 200;
  g.vcpu.set_regs(r);
  CHECK((g.vcpu.run_struct().kvm_dirty_regs & kRegs) != 0);
  CHECK(g.vcpu.regs().rax == 200);  // reads see the pending write
  CHECK(next_out(g) == 201);
  CHECK(g.vcpu.sregs().cr3 == g.layout.page_tables);  // sregs: requested separately
  CHECK(g.vcpu.sync_regs_requested() == (kRegs | kSregs));
}

TEST_CASE("sync regs on demand: a group not read for a window is dropped again") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  next_out(g);
  g.vcpu.regs();
  REQUIRE(g.vcpu.sync_regs_requested() == kRegs);
  // Requested until a whole window passes without a read, then no longer.
  int runs = 0;
  while (g.vcpu.sync_regs_requested() != 0) {
    next_out(g);
    REQUIRE(++runs <= 2 * static_cast<int>(kvm::Vcpu::kSyncWindowRuns));
  }
  CHECK(runs >= static_cast<int>(kvm::Vcpu::kSyncWindowRuns) - 1);
  std::uint64_t v = next_out(g);
  CHECK(g.vcpu.run_struct().kvm_valid_regs == 0);
  // A read after that is an ioctl again and still correct.
  CHECK(g.vcpu.regs().rax == v);
  CHECK(g.vcpu.regs().rax == regs_by_ioctl(g.vcpu).rax);
}

TEST_CASE("sync regs on demand: writes without reads go through kvm_run and request nothing") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  abi::kvm_regs start = g.vcpu.regs();  // before the first run: ioctls
  abi::kvm_sregs sregs = g.vcpu.sregs();
  CHECK(next_out(g) == 0);
  for (std::uint64_t i = 1; i <= 40; ++i) {
    abi::kvm_regs r = start;
    r.rax = i * 3;
    g.vcpu.set_sregs(sregs);
    g.vcpu.set_regs(r);  // back to the first `out`, with a new rax
    REQUIRE((g.vcpu.run_struct().kvm_dirty_regs & (kRegs | kSregs)) == (kRegs | kSregs));
    REQUIRE(next_out(g) == i * 3);
  }
  CHECK(g.vcpu.sync_regs_requested() == 0);
}

TEST_CASE("sync regs on demand: vCPU events are synced the same way, by default") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::VcpuEvents);
  if ((g.vcpu.sync_regs_mask() & kEvents) == 0)
    KVM_TEST_SKIP("KVM_CAP_SYNC_REGS does not offer KVM_SYNC_X86_EVENTS here");
  next_out(g);
  CHECK(g.vcpu.sync_regs_requested() == 0);
  abi::kvm_vcpu_events ev = g.vcpu.vcpu_events();
  CHECK(g.vcpu.sync_regs_requested() == kEvents);
  next_out(g);
  abi::kvm_vcpu_events ioctl{};
  g.vcpu.ioctl<abi::ioctl::GetVcpuEvents>(ioctl);
  ev = g.vcpu.vcpu_events();
  CHECK(std::memcmp(&ev, &ioctl, sizeof ev) == 0);
}

TEST_CASE("sync regs off: nothing is ever requested, reads and writes are ioctls") {
  GuestOptions o;
  o.vcpu.sync_regs = false;
  LongModeGuest g(count_out, o);
  CHECK(g.vcpu.sync_regs_mask() == 0);
  next_out(g);
  abi::kvm_regs r = g.vcpu.regs();
  r.rax = 7;
  g.vcpu.set_regs(r);
  CHECK(g.vcpu.run_struct().kvm_dirty_regs == 0);
  CHECK(regs_by_ioctl(g.vcpu).rax == 7);
  CHECK(next_out(g) == 8);  // the guest increments before its next out
  CHECK(g.vcpu.sync_regs_requested() == 0);
  CHECK(g.vcpu.run_struct().kvm_valid_regs == 0);
}

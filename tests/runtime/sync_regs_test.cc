// Sync regs on demand: a VMM that never reads registers has KVM copy nothing at its exits; one
// that reads them gets the copy from the next run on, and stops paying once it stops reading.
// Chosen by the VMM: a fixed set of groups (set_sync_regs), and edits of the synced copy that
// reach the vCPU only when marked (mark_sync_regs_dirty).
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

TEST_CASE("sync regs chosen by the VMM: a fixed set is copied out at every exit, read or not") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  const std::uint64_t all = g.vcpu.sync_regs_mask();
  REQUIRE((all & (kRegs | kSregs)) == (kRegs | kSregs));
  CHECK(g.vcpu.sync_regs_on_demand());
  g.vcpu.set_sync_regs(all);
  CHECK_FALSE(g.vcpu.sync_regs_on_demand());
  CHECK(g.vcpu.sync_regs_requested() == all);
  // Never read through the runtime, yet KVM fills the copy at every exit, for windows on end.
  for (std::uint64_t want = 0; want < 3 * kvm::Vcpu::kSyncWindowRuns; ++want) {
    REQUIRE(next_out(g) == want);
    REQUIRE(g.vcpu.run_struct().kvm_valid_regs == all);
    REQUIRE(g.vcpu.sync_regs_valid() == all);
    REQUIRE(g.vcpu.synced_regs().regs.rax == want);
  }
  CHECK(g.vcpu.synced_regs().sregs.cr3 == g.layout.page_tables);
  // Back on demand: the set stays requested for a window without reads, then is dropped.
  g.vcpu.set_sync_regs_on_demand();
  CHECK(g.vcpu.sync_regs_on_demand());
  int runs = 0;
  while (g.vcpu.sync_regs_requested() != 0) {
    next_out(g);
    REQUIRE(++runs <= 2 * static_cast<int>(kvm::Vcpu::kSyncWindowRuns));
  }
  next_out(g);
  CHECK(g.vcpu.run_struct().kvm_valid_regs == 0);
}

TEST_CASE("sync regs chosen by the VMM: none, and reads stay ioctls that request nothing") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  g.vcpu.set_sync_regs(0);
  for (std::uint64_t want = 0; want < 2 * kvm::Vcpu::kSyncWindowRuns; ++want) {
    REQUIRE(next_out(g) == want);
    REQUIRE(g.vcpu.run_struct().kvm_valid_regs == 0);
    REQUIRE(g.vcpu.regs().rax == want);  // an ioctl every time
    REQUIRE(g.vcpu.sync_regs_requested() == 0);
  }
  // Only regs, fixed: sregs reads are ioctls that do not add the group.
  g.vcpu.set_sync_regs(kRegs);
  next_out(g);
  CHECK(g.vcpu.sregs().cr3 == g.layout.page_tables);
  CHECK(g.vcpu.sync_regs_requested() == kRegs);
  next_out(g);
  CHECK(g.vcpu.run_struct().kvm_valid_regs == kRegs);
}

TEST_CASE("sync regs marked dirty: an edit of the synced copy reaches the guest only when marked") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  g.vcpu.set_sync_regs(kRegs);
  CHECK(next_out(g) == 0);
  CHECK(next_out(g) == 1);
  // Not marked: KVM never sees the edit, and overwrites the copy at the next exit.
  g.vcpu.synced_regs().regs.rax = 200;
  CHECK(g.vcpu.run_struct().kvm_dirty_regs == 0);
  CHECK(next_out(g) == 2);
  CHECK(g.vcpu.synced_regs().regs.rax == 2);
  // Marked: KVM loads the copy as the run starts; the guest increments it and outs it
  // (its low byte: the guest outs al).
  g.vcpu.synced_regs().regs.rax = 200;
  g.vcpu.mark_sync_regs_dirty(kRegs);
  CHECK(g.vcpu.run_struct().kvm_dirty_regs == kRegs);
  CHECK(g.vcpu.regs().rax == 200);  // the runtime's reads see the pending edit
  CHECK(next_out(g) == 201);
  CHECK(g.vcpu.run_struct().kvm_dirty_regs == 0);  // KVM took it
  CHECK(regs_by_ioctl(g.vcpu).rax == 201);
}

TEST_CASE("sync regs marked dirty: stale or unknown groups are refused, naming them") {
  LongModeGuest g(count_out);
  REQUIRE_CAP(g.sys, abi::Cap::SyncRegs);
  // Before the first run nothing was copied out.
  CHECK_THROWS_WITH(g.vcpu.mark_sync_regs_dirty(kRegs),
                    Catch::Contains("KVM_SYNC_X86_REGS not current in kvm_run"));
  g.vcpu.set_sync_regs(kRegs);
  next_out(g);
  // sregs were not copied out at this exit: marking them would load a stale copy.
  CHECK_THROWS_WITH(g.vcpu.mark_sync_regs_dirty(kRegs | kSregs),
                    "kvm::Vcpu::mark_sync_regs_dirty: Invalid argument (vcpu 0: "
                    "KVM_SYNC_X86_SREGS not current in kvm_run (not copied out at the last exit, "
                    "nor read or set since): KVM would load a stale copy; read the group first, "
                    "or give it whole with set_regs()/set_sregs()/set_vcpu_events())");
  CHECK(g.vcpu.run_struct().kvm_dirty_regs == 0);
  g.vcpu.sregs();  // read: now current
  g.vcpu.mark_sync_regs_dirty(kRegs | kSregs);
  CHECK(g.vcpu.run_struct().kvm_dirty_regs == (kRegs | kSregs));
  CHECK(next_out(g) == 1);
  CHECK_THROWS_WITH(g.vcpu.set_sync_regs(0x8 | kRegs),
                    Catch::Contains("vcpu 0: 0x8 not among the groups this vCPU may sync"));
  CHECK_THROWS_WITH(g.vcpu.mark_sync_regs_dirty(0x10),
                    Catch::Contains("0x10 not among the groups"));
}

TEST_CASE("sync regs chosen by the VMM: groups the vCPU was not given are refused") {
  GuestOptions o;
  o.vcpu.sync_regs = false;
  LongModeGuest g(count_out, o);
  CHECK_THROWS_WITH(g.vcpu.set_sync_regs(kRegs),
                    "kvm::Vcpu::set_sync_regs: Invalid argument (vcpu 0: KVM_SYNC_X86_REGS not "
                    "among the groups this vCPU may sync (none; VcpuOptions::sync_regs/sync_events "
                    "and the host's KVM_CAP_SYNC_REGS))");
  g.vcpu.set_sync_regs(0);  // none is always allowed
  CHECK(next_out(g) == 0);
}

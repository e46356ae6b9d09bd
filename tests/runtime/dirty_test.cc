// Dirty-page tracking of a running guest (bitmap, manual protect, dirty ring) and the
// coalesced MMIO ring.
#include <catch2/catch.hpp>

#include <set>

#include "guest.h"

using namespace testing;
using kvm::ExitReason;
using kvm::x86::mem;
namespace abi = kvm::abi;

namespace {

constexpr std::uint64_t kData = 0x200000;  // a second slot right after the 2 MiB of RAM

// A guest that writes one byte into each listed page of the data slot, then halts.
void write_pages(Assembler& a, std::initializer_list<int> pages) {
  a.mov(Reg::Rbx, kData);
  a.mov(Reg::Rax, 0x5a);
  for (int p : pages) a.store(Width::k8, mem(Reg::Rbx, p * 4096 + 100), Reg::Rax);
  a.hlt();
}

GuestOptions small_ram() {
  GuestOptions o;
  o.memory = 2 << 20;
  return o;
}

std::set<int> bits(const std::vector<std::uint64_t>& bitmap) {
  std::set<int> s;
  for (std::size_t w = 0; w < bitmap.size(); ++w) {
    for (int b = 0; b < 64; ++b) {
      if (bitmap[w] >> b & 1) s.insert(static_cast<int>(w * 64 + b));
    }
  }
  return s;
}

}  // namespace

TEST_CASE("dirty log: the bitmap shows exactly the pages the guest wrote, then clears") {
  LongModeGuest g([](Assembler& a) { write_pages(a, {3, 7, 200}); }, small_ram());
  g.mem.add(g.vm, kData, 1 << 20, abi::MemoryFlags::LogDirtyPages);
  const std::uint32_t slot = g.mem.regions().back().slot;
  CHECK(bits(g.vm.dirty_log(slot)).empty());
  REQUIRE(g.run().reason() == ExitReason::Hlt);
  CHECK(bits(g.vm.dirty_log(slot)) == std::set<int>{3, 7, 200});
  CHECK(bits(g.vm.dirty_log(slot)).empty());  // reading cleared it
  CHECK(g.mem.read_obj<std::uint8_t>(kData + 7 * 4096 + 100) == 0x5a);
  CHECK_THROWS_WITH(
      g.vm.dirty_log(99),
      "KVM_GET_DIRTY_LOG: No such file or directory (slot 99 was never set on this VM)");
}

TEST_CASE("manual dirty-log protect: bits stay until cleared, then pages are tracked again") {
  kvm::System sys;
  if (sys.check_extension(abi::Cap::ManualDirtyLogProtect2) <= 0) {
    KVM_TEST_SKIP("the host reports KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 0");
  }
  // The guest writes page 3, halts, and on the next run writes page 3 again.
  LongModeGuest g(
      [](Assembler& a) {
        a.mov(Reg::Rbx, kData);
        a.mov(Reg::Rax, 1);
        a.store(Width::k8, mem(Reg::Rbx, 3 * 4096), Reg::Rax);
        a.hlt();
        a.store(Width::k8, mem(Reg::Rbx, 3 * 4096 + 8), Reg::Rax);
        a.hlt();
      },
      small_ram());
  g.vm.enable_cap(abi::Cap::ManualDirtyLogProtect2,
                  abi::to_underlying(abi::DirtyLogFlags::ManualProtectEnable));
  g.mem.add(g.vm, kData, 1 << 20, abi::MemoryFlags::LogDirtyPages);
  const std::uint32_t slot = g.mem.regions().back().slot;
  REQUIRE(g.run().reason() == ExitReason::Hlt);
  auto bitmap = g.vm.dirty_log(slot);
  CHECK(bits(bitmap) == std::set<int>{3});
  CHECK(bits(g.vm.dirty_log(slot)) == std::set<int>{3});  // not cleared by reading
  g.vm.clear_dirty_log(slot, 0, 256, bitmap);
  CHECK(bits(g.vm.dirty_log(slot)).empty());
  REQUIRE(g.run().reason() == ExitReason::Hlt);
  CHECK(bits(g.vm.dirty_log(slot)) == std::set<int>{3});  // re-protected, so tracked again
  CHECK_THROWS_WITH(g.vm.clear_dirty_log(slot, 3, 1, bitmap),
                    Catch::Contains("first page 3 is not a multiple of 64"));
}

TEST_CASE("dirty ring: the vCPU's ring lists the frames it dirtied; reset re-arms them") {
  kvm::System sys;
  if (sys.check_extension(abi::Cap::DirtyLogRing) <= 0 &&
      sys.check_extension(abi::Cap::DirtyLogRingAcqRel) <= 0) {
    KVM_TEST_SKIP("the host reports KVM_CAP_DIRTY_LOG_RING = 0");
  }
  kvm::Vm vm = sys.create_vm();
  CHECK_THROWS_WITH(kvm::enable_dirty_ring(vm, 1000), Catch::Contains("needs a power of two"));
  kvm::enable_dirty_ring(vm, 64 * 1024);
  kvm::GuestMemory memory;
  auto ram = memory.add(vm, 0, 2 << 20);
  memory.add(vm, kData, 1 << 20, abi::MemoryFlags::LogDirtyPages);
  kvm::x86::GuestLayout layout;
  kvm::x86::write_long_mode_tables(ram, 0, layout);
  Assembler a;
  write_pages(a, {1, 2, 9});
  kvm::x86::write_bytes(ram, 0, layout.code, a.finish(), "code");
  kvm::Vcpu v = vm.create_vcpu(0);
  kvm::x86::start_in_long_mode(v, layout);
  kvm::DirtyRing ring(v, 64 * 1024);
  CHECK(ring.entries() == 4096);
  REQUIRE(v.run().reason() == ExitReason::Hlt);
  std::set<int> data_pages;
  ring.harvest([&](const kvm::DirtyGfn& d) {
    if (d.slot == 1) data_pages.insert(static_cast<int>(d.offset));
  });
  CHECK(data_pages == std::set<int>{1, 2, 9});
  CHECK(vm.reset_dirty_rings() >= 3);
  CHECK(ring.harvest([](const kvm::DirtyGfn&) {}) == 0);
}

TEST_CASE("coalesced MMIO: writes to a registered zone are queued, not exits") {
  constexpr std::uint64_t kZone = 0x10000000;
  LongModeGuest g([](Assembler& a) {
    a.mov(Reg::Rbx, kZone);
    for (int i = 1; i <= 3; ++i) {
      a.mov(Reg::Rax, static_cast<std::uint64_t>(i * 0x11));
      a.store(Width::k32, mem(Reg::Rbx, i * 4), Reg::Rax);
    }
    a.out(Width::k8, 0x10);
    a.hlt();
  });
  if (g.sys.check_extension(abi::Cap::CoalescedMmio) <= 0) {
    KVM_TEST_SKIP("the host reports KVM_CAP_COALESCED_MMIO = 0");
  }
  g.vm.register_coalesced_mmio(kZone, 0x1000);
  kvm::Exit e = g.run();
  REQUIRE(e.reason() == ExitReason::Io);  // the three writes caused no exit
  kvm::CoalescedRing ring(g.vcpu);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> writes;
  ring.drain([&](const kvm::CoalescedWrite& w) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < w.data.size(); ++i) v |= std::uint32_t{w.data[i]} << (8 * i);
    writes.emplace_back(w.addr, v);
  });
  CHECK(writes == std::vector<std::pair<std::uint64_t, std::uint32_t>>{
                      {kZone + 4, 0x11}, {kZone + 8, 0x22}, {kZone + 12, 0x33}});
  CHECK(ring.drain([](const kvm::CoalescedWrite&) {}) == 0);
  g.vm.unregister_coalesced_mmio(kZone, 0x1000);
}

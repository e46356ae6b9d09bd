// Our runtime against raw ioctls on <linux/kvm.h>, on real guests (see guest.h). Each
// benchmark holds one guest per side and interleaves the sides (see bench.h):
//
//   exit/out, exit/mmio, exit/hlt
//               one operation = one exit round trip: KVM_RUN until the guest's next out /
//               MMIO write / hlt, and reading the exit's data. Sides: raw, ours (default
//               options: sync regs on demand, so nothing is synced for a VMM that reads no
//               register), ours_nosync (VcpuOptions{.sync_regs = false}), ours_run_for
//               (Vcpu::run_for() with a 1 s deadline);
//   regs        the out loop again, but the VMM also reads the guest's registers and writes
//               them back (rax + 1) on every exit. Sides: raw (KVM_GET_REGS + KVM_SET_REGS),
//               raw_sync (hand-written KVM_CAP_SYNC_REGS), ours (default options: the
//               registers are requested from KVM after the first read), ours_nosync;
//   lifecycle   create VM + memory + vCPU, run the boot guest to HLT, destroy. Sides: raw,
//               ours, raw_cpuid (a diagnostic, see below);
//   reset       the fast alternative: restore memory and registers of a kept VM and run to
//               HLT again. Sides: raw, ours, ours_nosync (all three copy the whole 1 MiB),
//               ours_snapshot (kvm::Snapshot: only the pages the guest dirtied);
// snapshot_bench.cc has the cost curve of kvm::Snapshot, vcpus_bench.cc exits on 1 and 2
// vCPU threads.
//   decode      decoding one exit from a kvm_run page in memory, no ioctl at all: a switch on
//               the raw struct vs kvm::Exit.
//
// Every benchmark checks what the guest did (port, value, counter...), so a wrong fast path
// fails instead of looking fast.
#include <benchmark/benchmark.h>
#include <cpuid.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "bench.h"
#include "checks.h"
#include "guest.h"

namespace bench {
namespace {

using kvm::ExitReason;

// ---- 1. exit round trip
// -------------------------------------------------------------------------- One operation: KVM_RUN
// until the guest's next exit, and that exit's data checked.

auto raw_exit_op(RawGuest& g, Program p) {
  return [&g, p] {
    g.run_once();
    check_raw_exit(*g.run, p);
  };
}

auto our_exit_op(OurGuest& g, Program p) {
  return [&g, p] { check_our_exit(run_ours(g.vcpu), p); };
}

// The same through Vcpu::run_for() with a deadline far away: what the deadline costs.
auto our_timed_exit_op(OurGuest& g, Program p) {
  return [&g, p] {
    for (;;) {
      kvm::Exit e = g.vcpu.run_for(std::chrono::seconds(1));
      if (e.timed_out()) fail("ours_run_for: the guest ran for a second without exiting");
      if (!e.interrupted()) return check_our_exit(e, p);
    }
  };
}

void exit_bench(benchmark::State& st, Program p) {
  guarded(st, [&] {
    RawGuest raw(p);
    OurGuest ours(p);
    OurGuest nosync(p, kvm::VcpuOptions{.sync_regs = false});
    OurGuest timed(p);
    interleave(st,
               sides(side("raw", raw_exit_op(raw, p)), side("ours", our_exit_op(ours, p)),
                     side("ours_nosync", our_exit_op(nosync, p)),
                     side("ours_run_for", our_timed_exit_op(timed, p))),
               16);
  });
}

// ---- 2. registers read and written on every exit
// ------------------------------------------------- The guest outs al in a loop; the VMM checks rax
// and sets rax + 1, so each exit's value is the previous one plus one.

void check_counter(std::uint64_t rax, std::uint64_t want, std::uint8_t out_value) {
  if (rax != want || out_value != static_cast<std::uint8_t>(want)) {
    fail("guest rax " + std::to_string(rax) + " / out " + std::to_string(out_value) + ", want " +
         std::to_string(want));
  }
}

std::uint8_t raw_out_value(const struct kvm_run& r) {
  check_raw_exit(r, Program::OutLoop);
  return *(reinterpret_cast<const std::uint8_t*>(&r) + r.io.data_offset);
}

void regs_bench(benchmark::State& st) {
  guarded(st, [&] {
    // Raw, the obvious way: KVM_GET_REGS + KVM_SET_REGS + KVM_RUN per exit.
    RawGuest raw(Program::OutLoop);
    std::uint64_t raw_n = 0;
    auto raw_op = [&] {
      raw.run_once();
      std::uint8_t out = raw_out_value(*raw.run);
      struct kvm_regs regs;
      raw_ioctl(raw.vcpu, KVM_GET_REGS, &regs, "KVM_GET_REGS");
      check_counter(regs.rax, raw_n, out);
      regs.rax = ++raw_n;
      raw_ioctl(raw.vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    };

    // Raw, the best hand-written C: KVM_CAP_SYNC_REGS for the general registers only.
    RawGuest hand(Program::OutLoop);
    if (!(ioctl(hand.vm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS)) {
      fail("KVM_CAP_SYNC_REGS lacks KVM_SYNC_X86_REGS");
    }
    hand.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
    std::uint64_t hand_n = 0;
    auto hand_op = [&] {
      hand.run_once();
      std::uint8_t out = raw_out_value(*hand.run);
      struct kvm_regs& regs = hand.run->s.regs.regs;
      check_counter(regs.rax, hand_n, out);
      regs.rax = ++hand_n;
      hand.run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    };

    // Ours: the same code with and without sync regs.
    auto our_op = [](OurGuest& g, std::uint64_t& n) {
      return [&g, &n] {
        kvm::Exit e = run_ours(g.vcpu);
        check_our_exit(e, Program::OutLoop);
        kvm::abi::kvm_regs regs = g.vcpu.regs();
        check_counter(regs.rax, n, static_cast<std::uint8_t>(e.io().value()));
        regs.rax = ++n;
        g.vcpu.set_regs(regs);
      };
    };
    OurGuest ours(Program::OutLoop);
    if (ours.vcpu.sync_regs_mask() == 0) fail("sync regs unavailable on this host");
    OurGuest nosync(Program::OutLoop, kvm::VcpuOptions{.sync_regs = false});
    std::uint64_t ours_n = 0, nosync_n = 0;

    interleave(
        st,
        sides(side("raw", raw_op), side("raw_sync", hand_op), side("ours", our_op(ours, ours_n)),
              side("ours_nosync", our_op(nosync, nosync_n))),
        16);
  });
}

// ---- 3. VM lifecycle and reset
// --------------------------------------------------------------------

void check_counter_in(const std::uint8_t* ram) {
  std::uint64_t counter;
  std::memcpy(&counter, ram + kCounterAddr, sizeof counter);
  if (counter != 1) fail("boot guest counter is " + std::to_string(counter) + ", want 1");
}

// Reset: restore all of guest memory from the image taken at creation, put back the initial
// registers, run to HLT again.
struct RawReset {
  RawGuest g{Program::Boot};
  std::vector<std::uint8_t> image{g.ram, g.ram + kRamSize};
  struct kvm_sregs sregs;
  struct kvm_regs regs;

  RawReset() {
    raw_ioctl(g.vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    raw_ioctl(g.vcpu, KVM_GET_REGS, &regs, "KVM_GET_REGS");
  }
  void operator()() {
    std::memcpy(g.ram, image.data(), kRamSize);
    raw_ioctl(g.vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
    raw_ioctl(g.vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    g.run_once();
    check_raw_exit(*g.run, Program::Boot);
    check_counter_in(g.ram);
  }
};

struct OurReset {
  OurGuest g;
  std::vector<std::uint8_t> image{g.ram.begin(), g.ram.end()};
  kvm::abi::kvm_sregs sregs = g.vcpu.sregs();
  kvm::abi::kvm_regs regs = g.vcpu.regs();

  explicit OurReset(kvm::VcpuOptions o = {}) : g(Program::Boot, o) {}
  void operator()() {
    std::memcpy(g.ram.data(), image.data(), kRamSize);
    g.vcpu.set_sregs(sregs);
    g.vcpu.set_regs(regs);
    check_our_exit(run_ours(g.vcpu), Program::Boot);
    check_counter_in(g.ram.data());
  }
};

// The same with kvm::Snapshot: only the pages the boot guest dirtied are copied back.
struct SnapshotReset {
  OurGuest g{Program::Boot, {}, kvm::abi::MemoryFlags::LogDirtyPages};
  kvm::Snapshot snapshot{g.vm, g.mem, g.vcpu};

  void operator()() {
    snapshot.restore(g.vcpu);
    check_our_exit(run_ours(g.vcpu), Program::Boot);
    check_counter_in(g.ram.data());
  }
};

void lifecycle_bench(benchmark::State& st) {
  guarded(st, [&] {
    RawKvm::get();  // /dev/kvm stays open, as a VMM keeps it
    system();
    interleave(st,
               sides(side("raw",
                          [] {
                            RawGuest g(Program::Boot);
                            g.run_once();
                            check_raw_exit(*g.run, Program::Boot);
                            check_counter_in(g.ram);
                          }),
                     side("ours",
                          [] {
                            OurGuest g(Program::Boot);
                            check_our_exit(run_ours(g.vcpu), Program::Boot);
                            check_counter_in(g.ram.data());
                          }),
                     // Diagnostic: raw plus the one CPUID instruction the runtime executes
                     // per memory region (Vm::phys_addr_bits()); CPUID traps to the
                     // hypervisor when the VMM itself runs in a VM, as here.
                     side("raw_cpuid",
                          [] {
                            RawGuest g(Program::Boot);
                            unsigned eax = 0, ebx, ecx, edx;
                            __get_cpuid(0x80000008, &eax, &ebx, &ecx, &edx);
                            benchmark::DoNotOptimize(eax);
                            g.run_once();
                            check_raw_exit(*g.run, Program::Boot);
                            check_counter_in(g.ram);
                          })),
               1);
  });
}

void reset_bench(benchmark::State& st) {
  guarded(st, [&] {
    RawReset raw;
    OurReset ours;
    OurReset nosync(kvm::VcpuOptions{.sync_regs = false});
    SnapshotReset snap;
    interleave(st,
               sides(side("raw", [&raw] { raw(); }), side("ours", [&ours] { ours(); }),
                     side("ours_nosync", [&nosync] { nosync(); }),
                     side("ours_snapshot", [&snap] { snap(); })),
               4);
  });
}

// ---- 4. exit decoding without ioctls
// --------------------------------------------------------------- Three kvm_run pages as KVM leaves
// them after an `out`, an MMIO write and a hlt, visited in a fixed pseudo-random order; each
// iteration decodes one exit and folds its data into a sum.

constexpr std::size_t kRunBytes = 3 * 4096;  // KVM_GET_VCPU_MMAP_SIZE on x86
constexpr std::size_t kOrder = 256;

struct ExitPages {
  std::array<void*, 3> page{};
  std::array<std::uint8_t, kOrder> order{};

  ExitPages() {
    for (void*& p : page) {
      p = mmap(nullptr, kRunBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) fail("mmap");
    }
    auto* io = static_cast<struct kvm_run*>(page[0]);
    io->exit_reason = KVM_EXIT_IO;
    io->io.direction = KVM_EXIT_IO_OUT;
    io->io.size = 1;
    io->io.port = kPort;
    io->io.count = 1;
    io->io.data_offset = KVM_PIO_PAGE_OFFSET * 4096;
    static_cast<std::uint8_t*>(page[0])[io->io.data_offset] = 0x5a;
    auto* mmio = static_cast<struct kvm_run*>(page[1]);
    mmio->exit_reason = KVM_EXIT_MMIO;
    mmio->mmio.phys_addr = kMmioAddr;
    mmio->mmio.len = 4;
    mmio->mmio.is_write = 1;
    std::memcpy(mmio->mmio.data, &kMmioValue, 4);
    static_cast<struct kvm_run*>(page[2])->exit_reason = KVM_EXIT_HLT;
    std::uint32_t x = 12345;
    for (auto& o : order) {
      x = x * 1103515245 + 12345;
      o = static_cast<std::uint8_t>((x >> 16) % 3);
    }
  }
  ~ExitPages() {
    for (void* p : page) munmap(p, kRunBytes);
  }
  // What a decoder's sum must be after decoding `n` exits.
  std::uint64_t expected_sum(std::size_t n) const {
    const std::uint64_t per[3] = {kPort ^ 0x5au, kMmioAddr ^ kMmioValue, 1};
    std::uint64_t s = 0;
    for (std::size_t i = 0; i < n; ++i) s += per[order[i % kOrder]];
    return s;
  }
};

// One operation: decode the next exit of the order and fold its data into `sum`.
struct RawDecoder {
  const ExitPages& pages;
  std::uint64_t sum = 0;
  std::size_t i = 0;
  void operator()() {
    const auto* r = static_cast<const struct kvm_run*>(pages.page[pages.order[i++ % kOrder]]);
    switch (r->exit_reason) {
      case KVM_EXIT_IO:
        if (r->io.direction == KVM_EXIT_IO_OUT) {
          std::uint32_t v = 0;
          std::memcpy(&v, reinterpret_cast<const std::uint8_t*>(r) + r->io.data_offset, r->io.size);
          sum += r->io.port ^ v;
        }
        break;
      case KVM_EXIT_MMIO: {
        std::uint64_t v = 0;
        std::memcpy(&v, r->mmio.data, r->mmio.len);
        sum += r->mmio.phys_addr ^ v;
        break;
      }
      case KVM_EXIT_HLT:
        sum += 1;
        break;
      default:
        fail("unexpected exit");
    }
    benchmark::DoNotOptimize(sum);
  }
};

struct OurDecoder {
  const ExitPages& pages;
  std::uint64_t sum = 0;
  std::size_t i = 0;
  void operator()() {
    auto* r = static_cast<kvm::abi::kvm_run*>(pages.page[pages.order[i++ % kOrder]]);
    kvm::Exit e(*r, kRunBytes, kvm::RunStatus::Exited);
    switch (e.reason()) {
      case ExitReason::Io: {
        kvm::IoExit io = e.io();
        if (io.is_out()) sum += io.port() ^ io.value();
        break;
      }
      case ExitReason::Mmio: {
        kvm::MmioExit m = e.mmio();
        sum += m.phys_addr() ^ m.value();
        break;
      }
      case ExitReason::Hlt:
        sum += 1;
        break;
      default:
        fail("unexpected exit");
    }
    benchmark::DoNotOptimize(sum);
  }
};

void decode_bench(benchmark::State& st) {
  guarded(st, [&] {
    ExitPages pages;
    RawDecoder raw{pages};
    OurDecoder ours{pages};
    interleave(st, sides(side("raw", [&raw] { raw(); }), side("ours", [&ours] { ours(); })), 4096);
    if (raw.sum != pages.expected_sum(raw.i)) fail("raw decode: wrong sum");
    if (ours.sum != pages.expected_sum(ours.i)) fail("our decode: wrong sum");
  });
}

// ---- registration
// -------------------------------------------------------------------------------------

void reg(const char* name, void (*fn)(benchmark::State&)) {
  benchmark::RegisterBenchmark(name, fn)->UseRealTime()->Unit(benchmark::kMillisecond);
}

const bool registered = [] {
  reg("exit/out", [](benchmark::State& st) { exit_bench(st, Program::OutLoop); });
  reg("exit/mmio", [](benchmark::State& st) { exit_bench(st, Program::MmioLoop); });
  reg("exit/hlt", [](benchmark::State& st) { exit_bench(st, Program::HltLoop); });
  reg("regs", regs_bench);
  reg("lifecycle", lifecycle_bench);
  reg("reset", reset_bench);
  reg("decode", decode_bench);
  return true;
}();

const bool compared = [] {
  for (const char* tag : {"out", "mmio", "hlt"}) {
    std::string b = std::string("exit/") + tag;
    compare({"exit round trip, " + std::string(tag), b, "raw", "ours", Goal::MaxRatio, 1.01});
  }
  for (const char* tag : {"out", "mmio", "hlt"}) {
    std::string b = std::string("exit/") + tag;
    compare(
        {"exit round trip, " + std::string(tag) + ", sync_regs=false", b, "raw", "ours_nosync"});
  }
  compare({"exit round trip, out, run_for(1 s) vs run()", "exit/out", "ours", "ours_run_for"});
  compare(
      {"regs on every exit: ours vs GET/SET_REGS", "regs", "raw", "ours", Goal::MinSpeedup, 2.0});
  compare({"regs on every exit: ours vs hand-made sync", "regs", "raw_sync", "ours"});
  compare({"regs on every exit: sync_regs=false vs raw", "regs", "raw", "ours_nosync",
           Goal::MaxRatio, 1.02});
  compare({"VM lifecycle: create, run to HLT, destroy", "lifecycle", "raw", "ours", Goal::MaxRatio,
           1.02});
  compare({"VM lifecycle: raw + 1 CPUID vs raw", "lifecycle", "raw", "raw_cpuid"});
  compare({"VM lifecycle: ours vs raw + 1 CPUID", "lifecycle", "raw_cpuid", "ours"});
  compare(
      {"reset instead of re-creating (ours)", "lifecycle", "ours", "ours", Goal::Info, 0, "reset"});
  compare({"reset: memory + regs, run to HLT", "reset", "raw", "ours"});
  compare({"reset, sync_regs=false", "reset", "raw", "ours_nosync", Goal::MaxRatio, 1.02});
  compare({"reset with kvm::Snapshot (dirty pages only)", "reset", "raw", "ours_snapshot"});
  compare({"exit decoding, per exit", "decode", "raw", "ours", Goal::MaxTime, 20});
  return true;
}();

}  // namespace
}  // namespace bench

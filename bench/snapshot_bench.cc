// The cost curve of kvm::Snapshot::restore(): guest memory of 1 MiB, 64 MiB and 1 GiB against
// 1, 8, 64 and 4096 dirty pages (1 MiB has no room for 4096), found with the dirty log (manual
// protect here) or with the dirty ring.
//
//   snapshot/<size>, snapshot_ring/<size>
//     exit    the unit of the target: one exit round trip of our default out loop (its own VM);
//     d<N>    one operation = one restore() after the guest dirtied N pages spread over its
//             memory (the mean of up to 16 in a row, see RestoreSide). Only the restore is
//             timed, not the run that dirties the pages. Every
//             restore must report between N and N + kSlack pages copied (the slack: pages of
//             the guest's page tables, whose accessed bits KVM sets), and the last page the
//             guest wrote must read as in the snapshot again.
// One guest per size and tracking serves all its d<N> sides: N and the stride are registers
// set before each run, so the sides interleave on the same VM.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "bench.h"
#include "checks.h"
#include "guest.h"
#include "kvm/x86/asm.h"

namespace bench {
namespace {

using kvm::x86::Reg;
using kvm::x86::Width;

constexpr std::uint64_t kDataStart = 0xa0000;  // above the tables, code and stacks of layout()
constexpr std::uint64_t kPage = 4096;
constexpr std::size_t kSlack = 8;
constexpr std::uint32_t kRingBytes = 128 * 1024;  // 8192 entries: 4096 pages never fill it
constexpr std::uint8_t kMark = 0x5a;

// Writes kMark to rcx pages, rdx bytes apart from rbx, then halts.
std::vector<std::uint8_t> dirtying_program() {
  kvm::x86::Assembler a;
  a.mov(Reg::Rax, kMark);
  kvm::x86::Label top = a.new_label();
  a.bind(top);
  a.store(Width::k8, kvm::x86::mem(Reg::Rbx), Reg::Rax);
  a.add(Reg::Rbx, Reg::Rdx);
  a.dec(Reg::Rcx);
  a.jne(top);
  a.hlt();
  return a.finish();
}

class SnapshotGuest {
 public:
  SnapshotGuest(std::uint64_t bytes, bool ring) : bytes_(bytes), vm_(system().create_vm()) {
    if (ring) kvm::enable_dirty_ring(vm_, kRingBytes);  // before the vCPU
    ram_ = mem_.add(vm_, 0, bytes, kvm::abi::MemoryFlags::LogDirtyPages);
    kvm::x86::write_long_mode_tables(ram_, 0, layout());
    kvm::x86::write_bytes(ram_, 0, layout().code, dirtying_program(), "dirtying program");
    vcpu_.emplace(vm_.create_vcpu(0));
    kvm::x86::start_in_long_mode(*vcpu_, layout());
    start_ = vcpu_->regs();
    if (ring) {
      ring_.emplace(*vcpu_, kRingBytes);
      snapshot_.emplace(vm_, mem_, *vcpu_, *ring_);
    } else {
      snapshot_.emplace(vm_, mem_, *vcpu_);
    }
  }

  std::uint64_t max_pages() const { return (bytes_ - kDataStart) / kPage; }

  // Runs the guest dirtying `pages` pages (not timed), then restores; returns the restore's
  // seconds.
  double dirty_and_restore(std::uint64_t pages) {
    kvm::abi::kvm_regs r = start_;
    r.rbx = kDataStart;
    r.rcx = pages;
    r.rdx = (max_pages() / pages) * kPage;
    const std::uint64_t last = kDataStart + (pages - 1) * r.rdx;
    vcpu_->set_regs(r);
    check_our_exit(run_ours(*vcpu_), Program::Boot);  // the HLT after the loop
    if (ram_[last] != kMark) fail("snapshot: the guest did not write its last page");
    auto t0 = std::chrono::steady_clock::now();
    std::size_t copied = snapshot_->restore(*vcpu_);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (copied < pages || copied > pages + kSlack) {
      fail("snapshot: restore copied " + std::to_string(copied) +
           " pages after the guest dirtied " + std::to_string(pages));
    }
    if (ram_[last] != 0) fail("snapshot: the last page the guest wrote was not restored");
    return s;
  }

 private:
  std::uint64_t bytes_;
  kvm::Vm vm_;
  kvm::GuestMemory mem_;
  std::span<std::uint8_t> ram_;
  std::optional<kvm::Vcpu> vcpu_;
  std::optional<kvm::DirtyRing> ring_;
  std::optional<kvm::Snapshot> snapshot_;
  kvm::abi::kvm_regs start_{};
};

// One operation = one restore, measured as the mean of reps() of them: the 4096-page side of
// the same guest moves 32 MiB per restore, and the first restore of a small side after it
// pays for the caches and TLB entries it evicted (a cold restore of one page here is about 2x
// a warm one). Repeating the small restores within a turn charges that to the turn, not to
// one restore.
class RestoreSide final : public Side {
 public:
  RestoreSide(SnapshotGuest& g, std::uint64_t pages)
      : Side("d" + std::to_string(pages)), g_(g), pages_(pages) {}
  double run(std::size_t n) override {
    double s = 0;
    for (std::size_t i = 0; i < n * reps(); ++i) s += g_.dirty_and_restore(pages_);
    return s / static_cast<double>(reps());
  }

 private:
  std::size_t reps() const { return pages_ >= 256 ? 1 : std::min<std::size_t>(16, 256 / pages_); }

  SnapshotGuest& g_;
  std::uint64_t pages_;
};

// One operation = one exit round trip, measured over kExitsPerOp of them: the restore sides'
// turns are long, and a turn of a few exits would be all noise.
class ExitSide final : public Side {
 public:
  ExitSide() : Side("exit"), g_(Program::OutLoop) {}
  double run(std::size_t n) override {
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n * kExitsPerOp; ++i)
      check_our_exit(run_ours(g_.vcpu), Program::OutLoop);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
           kExitsPerOp;
  }

 private:
  static constexpr std::size_t kExitsPerOp = 16;
  OurGuest g_;
};

constexpr std::uint64_t kPageCounts[] = {1, 8, 64, 4096};

struct Size {
  const char* name;
  std::uint64_t bytes;
};
constexpr Size kSizes[] = {{"1MiB", 1 << 20}, {"64MiB", 64 << 20}, {"1GiB", 1ull << 30}};

void snapshot_bench(benchmark::State& st, Size size, bool ring) {
  guarded(st, [&] {
    SnapshotGuest g(size.bytes, ring);
    Sides s;
    s.push_back(std::make_unique<ExitSide>());
    for (std::uint64_t pages : kPageCounts) {
      if (pages <= g.max_pages()) s.push_back(std::make_unique<RestoreSide>(g, pages));
    }
    interleave(st, std::move(s), 2);
  });
}

std::string bench_name(Size size, bool ring) {
  return std::string(ring ? "snapshot_ring/" : "snapshot/") + size.name;
}

const bool registered = [] {
  for (bool ring : {false, true}) {
    for (Size size : kSizes) {
      benchmark::RegisterBenchmark(bench_name(size, ring).c_str(), snapshot_bench, size, ring)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

const bool compared = [] {
  for (bool ring : {false, true}) {
    const std::string how = ring ? " (dirty ring)" : " (dirty log)";
    for (Size size : kSizes) {
      for (std::uint64_t pages : kPageCounts) {
        if (pages > (size.bytes - kDataStart) / kPage) continue;
        Comparison c{"restore, " + std::string(size.name) + ", " + std::to_string(pages) +
                         " dirty pages" + how,
                     bench_name(size, ring), "exit", "d" + std::to_string(pages)};
        if (size.bytes == 64 << 20 && pages <= 8) {
          c.goal = Goal::MaxRatio;  // <= 3 exit round trips
          c.target = 3;
        }
        compare(c);
      }
    }
    // The curve must follow the dirty pages, not the memory size.
    for (std::uint64_t pages : {8, 4096}) {
      const char* small = pages == 8 ? "1MiB" : "64MiB";
      compare({"restore of " + std::to_string(pages) + " pages, 1 GiB vs " + small + how,
               bench_name(pages == 8 ? kSizes[0] : kSizes[1], ring), "d" + std::to_string(pages),
               "d" + std::to_string(pages), Goal::Info, 0, bench_name(kSizes[2], ring)});
    }
  }
  return true;
}();

}  // namespace
}  // namespace bench

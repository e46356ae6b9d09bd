// Dirty-page tracking of a running guest: the pre-copy loop of live migration.
//
// What a VMM author can copy from here:
//  * a memory slot registered with KVM_MEM_LOG_DIRTY_PAGES, so KVM records every page the
//    guest writes;
//  * KVM_GET_DIRTY_LOG (Vm::dirty_log) from the migration thread while the vCPU thread keeps
//    running the guest: each call returns the pages written since the previous call and
//    re-arms tracking for them;
//  * the pre-copy loop: send all memory once, then only what was dirtied meanwhile, round
//    after round, then stop the vCPU (a Kicker), fetch the last dirty pages and send those;
//  * resuming on the destination: a fresh VM gets the copied memory and the vCPU registers
//    and carries on from where the source stopped.
//
// The guest writes pseudo-random pages of a 2 MiB working set forever (a xorshift64 sequence
// in rax picks the page and is the value written) and counts its writes in memory. It never
// exits, so everything happens while it runs.
//
// Build: see examples/README.md. Exit status 0 when the destination's memory equals the
// source's and the resumed guest makes progress.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kvm/kvm.h"
#include "kvm/x86/asm.h"
#include "kvm/x86/long_mode.h"

namespace {

using kvm::x86::Assembler;
using kvm::x86::mem;
using kvm::x86::Reg;
using kvm::x86::Width;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMemory = 4 << 20;  // one slot at guest-physical 0
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kPages = kMemory / kPage;
constexpr std::uint64_t kWorkingSet = 0x200000;  // 512 pages the guest dirties
constexpr std::uint64_t kCounter = 0x1ff000;     // the guest's write counter
constexpr std::uint32_t kSlot = 0;
constexpr int kMaxRounds = 6;
constexpr std::uint64_t kWritesPerRound = 300;  // let the guest work this much per round

std::vector<std::uint8_t> guest_program() {
  Assembler a;
  auto loop = a.new_label(), delay = a.new_label();
  a.mov(Reg::Rax, 0x9e3779b97f4a7c15ull);  // xorshift64 state
  a.mov(Reg::Rbx, kWorkingSet);
  a.mov(Reg::Rsi, kCounter);
  a.bind(loop);
  for (auto [shift, left] : {std::pair{13, true}, std::pair{7, false}, std::pair{17, true}}) {
    a.mov(Reg::Rcx, Reg::Rax);  // x ^= x << 13; x ^= x >> 7; x ^= x << 17
    if (left)
      a.shl(Reg::Rcx, static_cast<std::uint8_t>(shift));
    else
      a.shr(Reg::Rcx, static_cast<std::uint8_t>(shift));
    a.xor_(Reg::Rax, Reg::Rcx);
  }
  a.mov(Reg::Rdx, Reg::Rax);  // page = working set + (x % 512) * 4 KiB
  a.and_(Reg::Rdx, 0x1ff);
  a.shl(Reg::Rdx, 12);
  a.add(Reg::Rdx, Reg::Rbx);
  a.store(Width::k64, mem(Reg::Rdx, 0), Reg::Rax);
  a.load(Width::k64, Reg::Rcx, mem(Reg::Rsi, 0));  // ++counter
  a.inc(Reg::Rcx);
  a.store(Width::k64, mem(Reg::Rsi, 0), Reg::Rcx);
  a.mov(Reg::Rcx, 20);  // a little pause between writes
  a.bind(delay);
  a.dec(Reg::Rcx);
  a.jne(delay);
  a.jmp(loop);
  return a.finish();
}

// Runs `vcpu` on its own thread until kicked.
struct Runner {
  kvm::Vcpu& vcpu;
  std::string error;
  std::thread thread;
  explicit Runner(kvm::Vcpu& v) : vcpu(v) {
    thread = std::thread([this] {
      try {
        kvm::Exit e = vcpu.run();
        if (!e.interrupted()) error = "unexpected exit " + e.name();
      } catch (const std::exception& ex) {
        error = ex.what();
      }
    });
  }
  // Kicks the vCPU out of KVM_RUN and waits for the thread.
  void stop() {
    vcpu.kicker().kick();
    thread.join();
  }
};

// Waits until the guest's write counter has advanced by `n` (or 10 s passed).
bool wait_for_writes(const kvm::GuestMemory& memory, std::uint64_t n) {
  const std::uint64_t start = memory.read_obj<std::uint64_t>(kCounter);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (memory.read_obj<std::uint64_t>(kCounter) - start < n) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Copies the pages whose bits are set in `bitmap` from `src` to `dst`; returns how many.
std::size_t send_dirty(const std::vector<std::uint64_t>& bitmap, std::span<const std::uint8_t> src,
                       std::span<std::uint8_t> dst) {
  std::size_t sent = 0;
  for (std::size_t word = 0; word < bitmap.size(); ++word) {
    for (std::uint64_t bits = bitmap[word]; bits != 0; bits &= bits - 1) {
      const std::size_t page = word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
      if (page >= kPages) continue;
      std::memcpy(dst.data() + page * kPage, src.data() + page * kPage, kPage);
      ++sent;
    }
  }
  return sent;
}

}  // namespace

int main() try {
  const auto t0 = Clock::now();
  auto ms = [&] { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); };

  // --- the source VM: one slot with dirty logging, the guest running on its own thread -----
  kvm::System sys;
  kvm::Vm source = sys.create_vm();
  kvm::GuestMemory src_memory;
  std::span<std::uint8_t> src =
      src_memory.add(source, 0, kMemory, kvm::abi::MemoryFlags::LogDirtyPages);
  kvm::x86::GuestLayout layout;
  kvm::x86::write_long_mode_tables(src, 0, layout);
  kvm::x86::write_bytes(src, 0, layout.code, guest_program());
  kvm::Vcpu vcpu = source.create_vcpu(0);
  kvm::x86::start_in_long_mode(vcpu, layout);
  Runner runner(vcpu);
  if (!wait_for_writes(src_memory, 1)) throw std::runtime_error("the guest does not start");

  // --- pre-copy -----------------------------------------------------------------------------
  std::vector<std::uint8_t> dst(kMemory);  // the "destination": any byte sink would do
  source.dirty_log(kSlot);                 // start a fresh tracking epoch
  std::memcpy(dst.data(), src.data(), kMemory);
  std::printf("round 0: sent all %llu pages while the guest runs (%.1f ms)\n",
              static_cast<unsigned long long>(kPages), ms());
  const std::vector<std::uint8_t> first_copy = dst;

  std::size_t total_sent = kPages, resent = 0;
  for (int round = 1; round <= kMaxRounds; ++round) {
    if (!wait_for_writes(src_memory, kWritesPerRound))
      throw std::runtime_error("the guest stalled");
    const std::vector<std::uint64_t> bitmap = source.dirty_log(kSlot);  // KVM_GET_DIRTY_LOG
    const std::size_t sent = send_dirty(bitmap, src, dst);
    total_sent += sent;
    resent += sent;
    std::printf("round %d: %zu dirty pages re-sent, guest at %llu writes (%.1f ms)\n", round, sent,
                static_cast<unsigned long long>(src_memory.read_obj<std::uint64_t>(kCounter)),
                ms());
  }

  // --- stop and copy ------------------------------------------------------------------------
  runner.stop();
  if (!runner.error.empty()) throw std::runtime_error("source vCPU: " + runner.error);
  const kvm::abi::kvm_regs regs = vcpu.regs();
  const kvm::abi::kvm_sregs sregs = vcpu.sregs();
  const std::size_t last = send_dirty(source.dirty_log(kSlot), src, dst);
  total_sent += last;
  const std::uint64_t writes_at_stop = src_memory.read_obj<std::uint64_t>(kCounter);
  std::printf("stop-and-copy: vCPU stopped at %llu writes, %zu last dirty pages sent (%.1f ms)\n",
              static_cast<unsigned long long>(writes_at_stop), last, ms());

  std::size_t stale = 0;
  for (std::uint64_t p = 0; p < kPages; ++p) {
    stale += std::memcmp(first_copy.data() + p * kPage, src.data() + p * kPage, kPage) != 0;
  }
  const bool same = std::memcmp(dst.data(), src.data(), kMemory) == 0;
  std::printf(
      "sent %zu pages in total; destination %s the source; a single copy without the dirty "
      "log would have left %zu stale pages\n",
      total_sent, same ? "equals" : "DIFFERS FROM", stale);

  // --- resume on the destination ------------------------------------------------------------
  kvm::Vm target = sys.create_vm();
  kvm::GuestMemory dst_memory;
  std::span<std::uint8_t> dst_ram = dst_memory.add(target, 0, kMemory);
  std::memcpy(dst_ram.data(), dst.data(), kMemory);
  kvm::Vcpu resumed = target.create_vcpu(0);
  resumed.set_sregs(sregs);
  resumed.set_regs(regs);
  Runner dst_runner(resumed);
  const bool progressed = wait_for_writes(dst_memory, kWritesPerRound);
  dst_runner.stop();
  const std::uint64_t writes_after = dst_memory.read_obj<std::uint64_t>(kCounter);
  std::printf("destination: the guest resumed at %llu writes and reached %llu\n",
              static_cast<unsigned long long>(writes_at_stop),
              static_cast<unsigned long long>(writes_after));

  const bool ok =
      same && resent > 0 && progressed && dst_runner.error.empty() && writes_after > writes_at_stop;
  if (!dst_runner.error.empty()) std::printf("destination vCPU: %s\n", dst_runner.error.c_str());
  std::printf("%s (%.0f ms)\n", ok ? "OK" : "FAILED", ms());
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "dirty_tracking: %s\n", e.what());
  return 1;
}

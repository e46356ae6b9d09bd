// A sandbox for untrusted guest code: the loop of a fuzzer or a code-execution service.
//
// What a VMM author can copy from here:
//  * a time budget per program with Vcpu::run_for(): a guest that spins forever comes back
//    as Exit::timed_out() at its deadline, without a watchdog thread;
//  * an exit budget, so a guest that exits in a tight loop cannot keep the VMM busy either;
//  * a verdict for every way a program can end: output and HLT, a time-out, a triple fault
//    (KVM_EXIT_SHUTDOWN), an access to memory that is not there (an MMIO exit), an
//    emulation failure (KVM_EXIT_INTERNAL_ERROR), an exit reason the VMM does not expect;
//  * a cheap reset between programs instead of a new VM: a kvm::Snapshot taken at start-up
//    copies back only the pages the last program dirtied (found with the dirty log), and
//    registers, special registers and vCPU events go back through sync regs, so the reset
//    costs what the program wrote and no vCPU ioctl (one, KVM_SET_MP_STATE, after a crash).
//    The program the VMM loads is its own write, which the dirty log does not see: it is
//    reported with Snapshot::mark_dirty().
//
// The programs are small x86-64 snippets assembled here (long mode, CPL0). Each reports
// through `out` to port 0x10 and ends with `hlt`, or misbehaves on purpose. The well-behaved
// one runs first and last: the sandbox must give the same answer after the others.
//
// Build: see examples/README.md. Exit status 0 when every program gets its expected verdict.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kvm/kvm.h"
#include "kvm/x86/asm.h"
#include "kvm/x86/long_mode.h"

namespace {

using namespace std::chrono_literals;
using kvm::ExitReason;
using kvm::x86::Assembler;
using kvm::x86::mem;
using kvm::x86::Reg;
using kvm::x86::Width;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kRamBytes = 2 << 20;     // the sandbox's memory, at guest-physical 0
constexpr std::uint64_t kUnbacked = 0x10000000;  // mapped by the page tables, no memory there
constexpr std::uint8_t kOutputPort = 0x10;       // where a program reports a value
// Per program. Generous, so that a loaded host cannot make the well-behaved program (a few ms)
// time out; a fuzzer would use far less.
constexpr auto kTimeBudget = 500ms;
constexpr unsigned kExitBudget = 64;  // exits per program

struct Budget {
  std::chrono::nanoseconds time;
  unsigned exits;
};

// How one program ended.
struct Verdict {
  std::string kind;  // "finished", "timed out", "crashed", "exit budget", "bad access", ...
  std::string detail;
  std::vector<std::uint32_t> output;
};

class Sandbox {
 public:
  Sandbox()
      : vm_(sys_.create_vm()),
        ram_(memory_.add(vm_, 0, kRamBytes, kvm::abi::MemoryFlags::LogDirtyPages)),
        vcpu_(vm_.create_vcpu(0)) {
    kvm::x86::write_long_mode_tables(ram_, 0, layout_);
    // The state every program starts from: long mode at layout_.code, events all clear.
    kvm::x86::start_in_long_mode(vcpu_, layout_);
    snapshot_.emplace(vm_, memory_, vcpu_);
  }

  Verdict run(const std::function<void(Assembler&)>& program, Budget budget) {
    reset();
    Assembler a;
    program(a);
    std::vector<std::uint8_t> code = a.finish();
    kvm::x86::write_bytes(ram_, 0, layout_.code, code, "program");
    snapshot_->mark_dirty(layout_.code, code.size());  // so that the next reset removes it

    Verdict v;
    const auto deadline = Clock::now() + budget.time;
    for (unsigned exits = 0;; ++exits) {
      if (exits == budget.exits) {
        v.kind = "exit budget";
        v.detail = std::to_string(exits) + " exits used up";
        return v;
      }
      auto left = deadline - Clock::now();
      kvm::Exit e = vcpu_.run_for(left > 0ns ? left : 0ns);
      if (e.timed_out()) {
        v.kind = "timed out";
        v.detail = "still running after " + std::to_string(budget.time / 1ms) + " ms";
        return v;
      }
      if (e.interrupted()) continue;  // a stray signal: carry on
      switch (e.reason()) {
        case ExitReason::Io: {
          kvm::IoExit io = e.io();
          if (io.is_out() && io.port() == kOutputPort && io.count() == 1) {
            v.output.push_back(static_cast<std::uint32_t>(io.value()));
            continue;
          }
          v.kind = "bad access";
          v.detail = "port " + std::to_string(io.port());
          return v;
        }
        case ExitReason::Hlt:
          v.kind = "finished";
          return v;
        case ExitReason::Shutdown:
          crashed_ = true;
          v.kind = "crashed";
          v.detail = "triple fault (KVM_EXIT_SHUTDOWN)";
          return v;
        case ExitReason::Mmio: {
          kvm::MmioExit m = e.mmio();
          char where[64];
          std::snprintf(where, sizeof where, "%s of %u bytes at 0x%llx",
                        m.is_write() ? "write" : "read", m.len(),
                        static_cast<unsigned long long>(m.phys_addr()));
          v.kind = "bad access";
          v.detail = std::string("no memory there: ") + where;
          return v;
        }
        case ExitReason::InternalError:
          crashed_ = true;
          v.kind = "crashed";
          v.detail = "KVM could not emulate it (KVM_EXIT_INTERNAL_ERROR)";
          return v;
        default:
          v.kind = "unexpected exit";
          v.detail = e.name();
          return v;
      }
    }
  }

  double last_reset_us() const { return reset_us_; }
  std::size_t last_reset_pages() const { return reset_pages_; }

 private:
  // The pages dirtied since the last reset from the snapshot; registers, special registers
  // and events through the copy in kvm_run. A vCPU that shut down is made runnable again.
  void reset() {
    auto t0 = Clock::now();
    reset_pages_ = snapshot_->restore(vcpu_);
    if (crashed_) vcpu_.set_mp_state(kvm::abi::MpState::Runnable);
    crashed_ = false;
    reset_us_ = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  }

  kvm::System sys_;
  kvm::Vm vm_;
  kvm::GuestMemory memory_;
  std::span<std::uint8_t> ram_;
  kvm::Vcpu vcpu_;
  kvm::x86::GuestLayout layout_;
  std::optional<kvm::Snapshot> snapshot_;  // taken once the start state is set up
  bool crashed_ = false;
  double reset_us_ = 0;
  std::size_t reset_pages_ = 0;
};

// ---- the programs -------------------------------------------------------------------------

// Sums 1..1000, reports the sum, halts.
void well_behaved(Assembler& a) {
  a.xor_(Reg::Rax, Reg::Rax);
  a.mov(Reg::Rcx, 1000);
  auto top = a.new_label();
  a.bind(top);
  a.add(Reg::Rax, Reg::Rcx);
  a.dec(Reg::Rcx);
  a.jne(top);
  a.out(Width::k32, kOutputPort);
  a.hlt();
}

void spins_forever(Assembler& a) {
  auto top = a.new_label();
  a.bind(top);
  a.jmp(top);
}

void floods_the_vmm_with_exits(Assembler& a) {
  auto top = a.new_label();
  a.bind(top);
  a.out(Width::k32, kOutputPort);
  a.inc(Reg::Rax);
  a.jmp(top);
}

void undefined_instruction(Assembler& a) { a.ud2(); }  // no IDT: a triple fault

void writes_where_there_is_no_memory(Assembler& a) {
  a.mov(Reg::Rbx, kUnbacked);
  a.mov(Reg::Rax, 0x5a5a5a5a);
  a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);
  a.hlt();
}

// Unmaps everything above the first 2 MiB from its own page tables (the 511 page-directory
// entries after the first, at layout.page_tables + 0x2000), reports how many it cleared and
// halts; its own code, in the first 2 MiB, stays mapped. Without the reset, the next program's
// access to kUnbacked would page-fault instead of reaching the VMM as MMIO.
void unmaps_the_sandbox(Assembler& a) {
  kvm::x86::GuestLayout layout;
  a.mov(Reg::Rdi, layout.page_tables + 0x2000 + 8);
  a.mov(Reg::Rcx, 511);
  a.xor_(Reg::Rax, Reg::Rax);
  auto top = a.new_label();
  a.bind(top);
  a.store_imm(Width::k64, mem(Reg::Rdi, 0), 0);
  a.add(Reg::Rdi, 8);
  a.inc(Reg::Rax);
  a.dec(Reg::Rcx);
  a.jne(top);
  a.out(Width::k32, kOutputPort);
  a.hlt();
}

struct Case {
  const char* name;
  std::function<void(Assembler&)> program;
  std::string want_kind;
  std::vector<std::uint32_t> want_output;  // checked for "finished" programs
};

}  // namespace

int main() {
  try {
    Sandbox sandbox;
    const std::vector<Case> cases = {
        {"well-behaved", well_behaved, "finished", {500500}},
        {"spins forever", spins_forever, "timed out", {}},
        {"floods the VMM with exits", floods_the_vmm_with_exits, "exit budget", {}},
        {"undefined instruction", undefined_instruction, "crashed", {}},
        {"unmaps its own memory", unmaps_the_sandbox, "finished", {511}},
        {"writes where there is no memory", writes_where_there_is_no_memory, "bad access", {}},
        {"well-behaved, again", well_behaved, "finished", {500500}},
    };
    std::printf("sandbox: %llu KiB of memory, %lld ms and %u exits per program\n",
                static_cast<unsigned long long>(kRamBytes >> 10),
                static_cast<long long>(kTimeBudget / 1ms), kExitBudget);
    int failures = 0;
    for (const Case& c : cases) {
      auto t0 = Clock::now();
      Verdict v = sandbox.run(c.program, {kTimeBudget, kExitBudget});
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      std::string out;  // the first few values the program reported
      for (std::size_t i = 0; i < v.output.size() && i < 4; ++i)
        out += (i ? "," : "") + std::to_string(v.output[i]);
      if (v.output.size() > 4) out += ",... (" + std::to_string(v.output.size()) + " values)";
      if (!out.empty()) out = (v.detail.empty() ? "output " : "; output ") + out;
      bool ok = v.kind == c.want_kind && (v.kind != "finished" || v.output == c.want_output);
      failures += !ok;
      std::printf("%-32s %-12s %s%s (%.1f ms; reset before it: %zu pages, %.0f us)%s\n", c.name,
                  v.kind.c_str(), v.detail.c_str(), out.c_str(), ms, sandbox.last_reset_pages(),
                  sandbox.last_reset_us(), ok ? "" : ("  <- expected " + c.want_kind).c_str());
    }
    if (failures) {
      std::printf("FAILED (%d of %zu programs got an unexpected verdict)\n", failures,
                  cases.size());
      return 1;
    }
    std::printf("OK (%zu programs, every verdict as expected; the sandbox is intact)\n",
                cases.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sandbox: %s\nFAILED\n", e.what());
    return 1;
  }
}

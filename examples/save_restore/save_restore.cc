// Save/restore of a vCPU's full state into a byte buffer and back into a fresh VM.
//
// What a VMM author can copy from here (snapshot.h / snapshot.cc hold the reusable part):
//  * stopping a vCPU at a clean point: after an IO exit, KVM finishes the instruction only on
//    the next KVM_RUN, so run once with immediate_exit set (snapshot::complete_pending_io);
//  * reading every piece of vCPU state KVM exposes (registers, FPU, XSAVE, XCRs, MSRs, MP
//    state, local APIC, pending events, debug registers) plus the VM's memory, irqchip and
//    clock into one byte buffer;
//  * writing it all back into a brand-new VM in the right order;
//  * handling a host that refuses part of it (the MSR ioctls fail with EINVAL on some hosts):
//    the report says what did not travel, and the check below says what that means.
//
// The guest sets an MSR (KERNEL_GS_BASE), then computes Fibonacci numbers with registers and
// the stack, printing each to port 0x10; at the end it reads the MSR back and prints it to
// port 0x11, and reports it is done on port 0x12. The VMM runs it once straight through as the
// reference, then runs it again, snapshots it halfway, throws the VM away, restores the buffer into
// a fresh VM and lets it finish. Both runs must print the same.
//
// Build: see examples/README.md. Exit status 0 when the restored guest continues correctly
// (with --no-msrs: correctly apart from the MSR, which is then reported as lost).
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kvm/kvm.h"
#include "kvm/x86/asm.h"
#include "kvm/x86/long_mode.h"
#include "snapshot.h"

namespace {

using kvm::x86::Assembler;
using kvm::x86::Reg;
using kvm::x86::Width;

constexpr int kSteps = 40;
constexpr int kSnapshotAfter = 15;  // outputs before the snapshot
constexpr std::uint32_t kMsrKernelGsBase = 0xc0000102;
constexpr std::uint64_t kMsrValue = 0x00007fab12345678ull;  // canonical, or wrmsr faults
constexpr std::uint16_t kValuePort = 0x10, kMsrPort = 0x11;
// With an in-kernel irqchip `hlt` waits in the kernel for an interrupt instead of exiting, so
// the guest says it is done with a port write.
constexpr std::uint16_t kDonePort = 0x12;

std::vector<std::uint8_t> guest_program() {
  Assembler a;
  auto loop = a.new_label(), step = a.new_label();
  a.mov(Reg::Rcx, kMsrKernelGsBase);  // wrmsr KERNEL_GS_BASE = kMsrValue
  a.mov(Reg::Rax, kMsrValue & 0xffffffff);
  a.mov(Reg::Rdx, kMsrValue >> 32);
  a.wrmsr();
  a.mov(Reg::R8, 0);  // fib(i), fib(i+1)
  a.mov(Reg::R9, 1);
  a.mov(Reg::R10, 0);  // i
  a.bind(loop);
  a.call(step);
  a.inc(Reg::R10);
  a.mov(Reg::Rax, Reg::R9);
  a.xor_(Reg::Rax, Reg::R10);
  a.out(Width::k32, kValuePort);
  a.cmp(Reg::R10, kSteps);
  a.jne(loop);
  a.mov(Reg::Rcx, kMsrKernelGsBase);  // print the MSR back: low half, then high half
  a.rdmsr();
  a.out(Width::k32, kMsrPort);
  a.mov(Reg::Rax, Reg::Rdx);
  a.out(Width::k32, kMsrPort);
  a.out(Width::k8, kDonePort);
  a.hlt();
  a.bind(step);  // (r8, r9) = (r9, r8 + r9), through a call so the stack is live state
  a.push(Reg::R8);
  a.mov(Reg::R8, Reg::R9);
  a.pop(Reg::R11);
  a.add(Reg::R9, Reg::R11);
  a.ret();
  return a.finish();
}

// A VM with an in-kernel irqchip; memory and vCPU are added by the caller.
struct Machine {
  kvm::Vm vm;
  kvm::GuestMemory memory;
  std::optional<kvm::Vcpu> vcpu;
  explicit Machine(const kvm::System& sys) : vm(sys.create_vm()) { vm.create_irqchip(); }
};

// What the guest printed: every port write as (port, value).
using Output = std::vector<std::pair<std::uint16_t, std::uint32_t>>;

// Runs until `limit` outputs were collected or the guest is done; returns true when done.
bool run(kvm::Vcpu& vcpu, Output& out, std::size_t limit) {
  while (out.size() < limit) {
    kvm::Exit e = vcpu.run();
    if (e.interrupted()) continue;
    if (e.reason() != kvm::ExitReason::Io || !e.io().is_out()) {
      throw std::runtime_error("unexpected exit " + e.name());
    }
    if (e.io().port() == kDonePort) return true;
    out.emplace_back(e.io().port(), e.io().value());
  }
  return false;
}

void boot(const kvm::System& sys, Machine& m) {
  std::span<std::uint8_t> ram = m.memory.add(m.vm, 0, 2 << 20);
  kvm::x86::GuestLayout layout;
  kvm::x86::write_long_mode_tables(ram, 0, layout);
  kvm::x86::write_bytes(ram, 0, layout.code, guest_program());
  m.vcpu.emplace(m.vm.create_vcpu(0));
  kvm::x86::start_in_long_mode(*m.vcpu, layout);
  (void)sys;
}

void print_report(const char* what, const snapshot::Report& r) {
  std::string done;
  for (const std::string& d : r.done) done += (done.empty() ? "" : ", ") + d;
  std::printf("%s: %s\n", what, done.c_str());
  for (const std::string& s : r.skipped) std::printf("%s: NOT TRANSFERRED: %s\n", what, s.c_str());
}

}  // namespace

int main(int argc, char** argv) try {
  // --no-msrs: save without MSRs, to see what a host that refuses the MSR ioctls loses.
  snapshot::SaveOptions options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-msrs") == 0) {
      options.msrs = false;
    } else {
      std::fprintf(stderr, "usage: %s [--no-msrs]\n", argv[0]);
      return 2;
    }
  }
  kvm::System sys;

  // 1. The reference: the guest runs start to finish.
  Output reference;
  {
    Machine m(sys);
    boot(sys, m);
    if (!run(*m.vcpu, reference, SIZE_MAX))
      throw std::runtime_error("reference run did not finish");
  }
  std::printf("reference run: %zu outputs, last value %" PRIu32 "\n", reference.size(),
              reference[kSteps - 1].second);

  // 2. Run halfway and save everything into a byte buffer.
  std::vector<std::uint8_t> buffer;
  Output output;
  kvm::abi::kvm_fpu marked{};
  {
    Machine m(sys);
    boot(sys, m);
    if (run(*m.vcpu, output, kSnapshotAfter)) throw std::runtime_error("finished too early");
    snapshot::complete_pending_io(*m.vcpu);
    // The guest does not use the FPU, so give it a recognisable SSE register to carry over.
    // (Set right before saving: on this PVM host an FPU state set with KVM_SET_FPU before
    // KVM_RUN is sometimes lost across runs, a host quirk unrelated to save/restore.)
    marked = m.vcpu->fpu();
    for (std::size_t i = 0; i < 16; ++i) marked.xmm[1][i] = static_cast<std::uint8_t>(0xa0 + i);
    m.vcpu->set_fpu(marked);
    snapshot::Writer w;
    snapshot::Report saved;
    snapshot::save_vm(m.vm, m.memory, w, saved);
    snapshot::save_vcpu(sys, m.vm, *m.vcpu, w, saved, options);
    buffer = w.bytes();
    print_report("saved", saved);
  }  // the source VM is gone now
  std::printf("snapshot: %zu bytes after %zu outputs; source VM destroyed\n", buffer.size(),
              output.size());

  // 3. A fresh VM from the buffer alone; let the guest finish.
  Machine fresh(sys);
  snapshot::Reader reader(buffer);
  snapshot::Report restored;
  snapshot::restore_vm(reader, fresh.vm, fresh.memory, restored);
  fresh.vcpu.emplace(fresh.vm.create_vcpu(0));
  snapshot::restore_vcpu(reader, *fresh.vcpu, restored);
  print_report("restored", restored);
  const kvm::abi::kvm_fpu fpu_after = fresh.vcpu->fpu();
  const bool fpu_ok = std::memcmp(fpu_after.xmm[1], marked.xmm[1], 16) == 0;
  if (!run(*fresh.vcpu, output, SIZE_MAX)) throw std::runtime_error("restored run did not finish");

  // 4. Compare. The Fibonacci outputs depend on registers, stack and memory; the MSR readback
  //    depends on the MSRs having travelled.
  bool values_ok = output.size() == reference.size();
  for (std::size_t i = 0; values_ok && i < kSteps; ++i) values_ok = output[i] == reference[i];
  std::printf("restored guest: %zu outputs, the %d after the snapshot %s the reference\n",
              output.size(), kSteps - kSnapshotAfter, values_ok ? "match" : "DO NOT match");
  std::printf("xmm1 marker %s the restore\n", fpu_ok ? "survived" : "did NOT survive");

  bool msrs_travelled = false;
  for (const std::string& d : restored.done) msrs_travelled |= d == "msrs";
  const std::uint64_t msr_after =
      output.size() == reference.size()
          ? (std::uint64_t{output[kSteps + 1].second} << 32) | output[kSteps].second
          : 0;
  bool ok = values_ok && fpu_ok;
  if (msrs_travelled) {
    std::printf("KERNEL_GS_BASE after restore: %#" PRIx64 " (expected %#" PRIx64 ")\n", msr_after,
                kMsrValue);
    ok &= msr_after == kMsrValue;
  } else {
    std::printf(
        "MSR state could not be transferred on this host: KERNEL_GS_BASE after restore is %#" PRIx64
        " instead of %#" PRIx64 "; a guest OS would lose its per-CPU base and syscall entry\n",
        msr_after, kMsrValue);
  }
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "save_restore: %s\n", e.what());
  return 1;
}

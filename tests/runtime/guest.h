// Test helper: a VM with memory at GPA 0, one vCPU in 64-bit long mode (CPL0) and a guest
// program assembled with kvm::x86::Assembler at layout.code.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "kvm/kvm.h"
#include "kvm/x86/asm.h"
#include "kvm/x86/long_mode.h"

namespace testing {

using kvm::x86::Assembler;
using kvm::x86::Reg;
using kvm::x86::Width;

struct GuestOptions {
  std::uint64_t memory = 4 << 20;  // bytes at GPA 0
  kvm::abi::MemoryFlags memory_flags = {};
  // The identity-mapped range: GuestLayout's default (4 GiB, the 32-bit MMIO hole included).
  std::uint64_t mapped = kvm::x86::GuestLayout{}.mapped_size;
  kvm::VcpuOptions vcpu;
  bool irqchip = false;                // in-kernel irqchip before the vCPU
  std::uint32_t dirty_ring_bytes = 0;  // kvm::enable_dirty_ring() before the vCPU (0: none)
  bool idt = false;
  // RAM from a mapped, initially shared guest_memfd (KVM_SET_USER_MEMORY_REGION2) instead of
  // anonymous host memory.
  bool guest_memfd = false;
};

struct LongModeGuest {
  kvm::System sys;
  kvm::Vm vm;
  kvm::GuestMemory mem;
  kvm::x86::GuestLayout layout;
  std::span<std::uint8_t> ram;
  kvm::Vcpu vcpu;

  explicit LongModeGuest(const std::function<void(Assembler&)>& program, GuestOptions o = {})
      : vm(sys.create_vm()), layout(make_layout(o)), ram(add_ram(o)), vcpu(make_vcpu(o)) {
    kvm::x86::write_long_mode_tables(ram, 0, layout);
    Assembler a;
    program(a);
    kvm::x86::write_bytes(ram, 0, layout.code, a.finish(), "guest code");
    kvm::x86::start_in_long_mode(vcpu, layout);
  }

  // Runs until an exit that is not an interruption.
  kvm::Exit run() {
    for (;;) {
      kvm::Exit e = vcpu.run();
      if (!e.interrupted()) return e;
    }
  }

  // Runs, answering port `out`s to `port` by appending the byte to the returned text, until
  // the guest halts (or another exit, which fails the caller's expectations).
  std::string run_collecting(std::uint16_t port, kvm::Exit* last = nullptr) {
    std::string text;
    for (;;) {
      kvm::Exit e = run();
      if (e.reason() == kvm::ExitReason::Io && e.io().port() == port && e.io().is_out()) {
        for (std::uint8_t b : e.io().data()) text += static_cast<char>(b);
        continue;
      }
      if (last) *last = e;
      return text;
    }
  }

 private:
  static kvm::x86::GuestLayout make_layout(const GuestOptions& o) {
    kvm::x86::GuestLayout l;
    l.mapped_size = o.mapped;
    if (o.idt) l.idt = 0x2000;
    return l;
  }
  std::span<std::uint8_t> add_ram(const GuestOptions& o) {
    return o.guest_memfd ? mem.add_guest_memfd(vm, 0, o.memory)
                         : mem.add(vm, 0, o.memory, o.memory_flags);
  }
  kvm::Vcpu make_vcpu(const GuestOptions& o) {
    if (o.irqchip) vm.create_irqchip();
    if (o.dirty_ring_bytes) kvm::enable_dirty_ring(vm, o.dirty_ring_bytes);
    return vm.create_vcpu(0, o.vcpu);
  }
};

}  // namespace testing

#if defined(CATCH_VERSION_MAJOR)
#include <cstdio>
#include <sstream>

// Ends the current test case early with a reason printed to the test log (stderr is not
// captured by the JUnit reporter) and recorded as a warning. Only for capabilities the host
// reports as absent.
#define KVM_TEST_SKIP(reason)                                            \
  do {                                                                   \
    std::ostringstream kvm_test_os_;                                     \
    kvm_test_os_ << reason;                                              \
    std::fprintf(stderr, "SKIPPED in \"%s\": %s\n",                      \
                 Catch::getResultCapture().getCurrentTestName().c_str(), \
                 kvm_test_os_.str().c_str());                            \
    WARN(kvm_test_os_.str());                                            \
    return;                                                              \
  } while (0)

// Skips the rest of a test when the host reports a capability as 0.
#define REQUIRE_CAP(sys, cap)                                                   \
  do {                                                                          \
    if ((sys).check_extension(cap) <= 0)                                        \
      KVM_TEST_SKIP("the host reports " << kvm::abi::to_string(cap) << " = 0"); \
  } while (0)

// A fact about the host worth seeing in the log, without skipping anything.
#define KVM_TEST_NOTE(text)                                         \
  do {                                                              \
    std::ostringstream kvm_test_os_;                                \
    kvm_test_os_ << text;                                           \
    std::fprintf(stderr, "NOTE: %s\n", kvm_test_os_.str().c_str()); \
  } while (0)

// Exit reasons print as their kernel names in assertion messages.
namespace Catch {
template <>
struct StringMaker<kvm::abi::ExitReason> {
  static std::string convert(kvm::abi::ExitReason r) {
    std::string_view n = kvm::abi::to_string(r);
    return n.empty() ? "KVM_EXIT_#" + std::to_string(kvm::abi::to_underlying(r)) : std::string(n);
  }
};
}  // namespace Catch
#endif

// Guest setup shared by every KVM benchmark, in two flavours that do exactly the same work:
//
//  - RawGuest: the raw-C baseline, plain ioctl() on <linux/kvm.h> written the obvious way;
//  - OurGuest: the same VM through the runtime (kvm::System / Vm / GuestMemory / Vcpu).
//
// Both get one memory slot of kRamSize bytes at GPA 0 holding the long-mode tables of
// kvm::x86::GuestLayout{} and a guest program at layout.code, and one vCPU in 64-bit long
// mode at CPL0 (the only mode whose exits are cheap on this host; see runtime/kvm/x86/README.md).
// Nothing here is timed except where a benchmark calls it inside its loop (the lifecycle one).
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvm/kvm.h"
#include "kvm/x86/long_mode.h"

namespace bench {

inline constexpr std::uint64_t kRamSize = 1 << 20;       // everything of GuestLayout{} fits
inline constexpr std::uint16_t kPort = 0x10;             // port of the `out` guests
inline constexpr std::uint64_t kMmioAddr = 0x10000000;   // identity-mapped, in no slot
inline constexpr std::uint32_t kMmioValue = 0x12345678;  // what the MMIO guest writes
inline constexpr std::uint64_t kCounterAddr = 0x20000;   // the boot guest's counter

enum class Program {
  OutLoop,   // for (;;) out(kPort, al)                  -> KVM_EXIT_IO per run
  MmioLoop,  // for (;;) *(u32*)kMmioAddr = kMmioValue   -> KVM_EXIT_MMIO per run
  HltLoop,   // for (;;) hlt                             -> KVM_EXIT_HLT per run
  Boot,      // ++*(u64*)kCounterAddr; hlt               -> one KVM_EXIT_HLT
};

const char* program_name(Program p);

// The default layout the tables are written for.
const kvm::x86::GuestLayout& layout();

// Writes page tables, GDT/TSS and the program into `ram` (guest-physical [0, kRamSize)).
void write_image(std::span<std::uint8_t> ram, Program p);

// Sets long-mode sregs on the result of KVM_GET_SREGS, and the initial general registers.
template <class Sregs>
void init_sregs(Sregs& s) {
  kvm::x86::setup_long_mode_sregs(s, layout());
}
template <class Regs>
void init_regs(Regs& r) {
  kvm::x86::setup_regs(r, layout().code, layout().stack_top);
}

// Thrown by the helpers on a failing ioctl or an unexpected exit; benchmarks turn it into
// State::SkipWithError, which makes the binary (and so `bazel test`) fail.
struct Failure {
  std::string what;
};
[[noreturn]] void fail(std::string what);

// ---- raw C baseline ------------------------------------------------------------------------

// /dev/kvm, opened once per process (API version checked), and KVM_GET_VCPU_MMAP_SIZE.
struct RawKvm {
  int fd = -1;
  std::size_t run_size = 0;
  static const RawKvm& get();
};

struct RawGuest {
  int vm = -1;
  int vcpu = -1;
  struct kvm_run* run = nullptr;
  std::uint8_t* ram = nullptr;
  std::size_t run_size = 0;

  // KVM_CREATE_VM, mmap + KVM_SET_USER_MEMORY_REGION, the image, KVM_CREATE_VCPU + mmap of
  // kvm_run, KVM_GET_SREGS / KVM_SET_SREGS / KVM_SET_REGS.
  explicit RawGuest(Program p);
  // munmap(kvm_run), close(vcpu), munmap(ram), close(vm): the reverse of creation, as the
  // runtime's members are destroyed.
  ~RawGuest();
  RawGuest(const RawGuest&) = delete;
  RawGuest& operator=(const RawGuest&) = delete;

  // KVM_RUN; fails on error (EINTR/EAGAIN are retried: nothing in the benchmarks signals).
  void run_once() const;
};

// ---- our runtime -----------------------------------------------------------------------------

// The process's kvm::System (one /dev/kvm fd, like RawKvm).
const kvm::System& system();

struct OurGuest {
  kvm::Vm vm;
  kvm::GuestMemory mem;
  std::span<std::uint8_t> ram;
  kvm::Vcpu vcpu;

  // `flags` for the memory slot (MemoryFlags::LogDirtyPages for a kvm::Snapshot).
  explicit OurGuest(Program p, kvm::VcpuOptions options = {}, kvm::abi::MemoryFlags flags = {});
};

}  // namespace bench

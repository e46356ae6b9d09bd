#include "guest.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "kvm/x86/asm.h"

namespace bench {
namespace {

using kvm::x86::Assembler;
using kvm::x86::Reg;
using kvm::x86::Width;

std::vector<std::uint8_t> assemble(Program p) {
  Assembler a;
  kvm::x86::Label loop = a.new_label();
  switch (p) {
    case Program::OutLoop:
      a.mov(Reg::Rax, 0);
      a.bind(loop);
      a.out(Width::k8, static_cast<std::uint8_t>(kPort));
      a.jmp(loop);
      break;
    case Program::MmioLoop:
      a.mov(Reg::Rbx, kMmioAddr);
      a.mov(Reg::Rax, kMmioValue);
      a.bind(loop);
      a.store(Width::k32, kvm::x86::mem(Reg::Rbx), Reg::Rax);
      a.jmp(loop);
      break;
    case Program::HltLoop:
      a.bind(loop);
      a.hlt();
      a.jmp(loop);
      break;
    case Program::Boot:
      a.load(Width::k64, Reg::Rax, kvm::x86::abs_addr(kCounterAddr));
      a.inc(Reg::Rax);
      a.store(Width::k64, kvm::x86::abs_addr(kCounterAddr), Reg::Rax);
      a.hlt();
      break;
  }
  return a.finish();
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

const char* program_name(Program p) {
  switch (p) {
    case Program::OutLoop:
      return "out loop";
    case Program::MmioLoop:
      return "mmio loop";
    case Program::HltLoop:
      return "hlt loop";
    case Program::Boot:
      return "boot";
  }
  return "?";
}

const kvm::x86::GuestLayout& layout() {
  static const kvm::x86::GuestLayout l{};
  return l;
}

void write_image(std::span<std::uint8_t> ram, Program p) {
  kvm::x86::write_long_mode_tables(ram, 0, layout());
  kvm::x86::write_bytes(ram, 0, layout().code, assemble(p), program_name(p));
}

void fail(std::string what) { throw Failure{std::move(what)}; }

// ---- raw ---------------------------------------------------------------------------------------

const RawKvm& RawKvm::get() {
  static const RawKvm k = [] {
    RawKvm r;
    r.fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (r.fd < 0) fail(errno_text("open /dev/kvm"));
    if (ioctl(r.fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) fail("KVM_GET_API_VERSION != 12");
    int size = ioctl(r.fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size < 0) fail(errno_text("KVM_GET_VCPU_MMAP_SIZE"));
    r.run_size = static_cast<std::size_t>(size);
    return r;
  }();
  return k;
}

RawGuest::RawGuest(Program p) {
  const RawKvm& kvm = RawKvm::get();
  run_size = kvm.run_size;
  vm = ioctl(kvm.fd, KVM_CREATE_VM, 0);
  if (vm < 0) fail(errno_text("KVM_CREATE_VM"));

  void* mem = mmap(nullptr, kRamSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) fail(errno_text("mmap ram"));
  ram = static_cast<std::uint8_t*>(mem);
  struct kvm_userspace_memory_region region = {};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kRamSize;
  region.userspace_addr = reinterpret_cast<std::uint64_t>(ram);
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
    fail(errno_text("KVM_SET_USER_MEMORY_REGION"));
  write_image({ram, kRamSize}, p);

  vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) fail(errno_text("KVM_CREATE_VCPU"));
  void* r = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (r == MAP_FAILED) fail(errno_text("mmap kvm_run"));
  run = static_cast<struct kvm_run*>(r);

  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) fail(errno_text("KVM_GET_SREGS"));
  init_sregs(sregs);
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) fail(errno_text("KVM_SET_SREGS"));
  struct kvm_regs regs;
  init_regs(regs);
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) fail(errno_text("KVM_SET_REGS"));
}

RawGuest::~RawGuest() {
  if (run) munmap(run, run_size);
  if (vcpu >= 0) close(vcpu);
  if (ram) munmap(ram, kRamSize);
  if (vm >= 0) close(vm);
}

void RawGuest::run_once() const {
  int rc;
  do {
    rc = ioctl(vcpu, KVM_RUN, 0);
  } while (rc < 0 && (errno == EINTR || errno == EAGAIN));
  if (rc < 0) fail(errno_text("KVM_RUN"));
}

// ---- ours
// ----------------------------------------------------------------------------------------

const kvm::System& system() {
  static const kvm::System sys;
  return sys;
}

namespace {
std::span<std::uint8_t> add_image(kvm::Vm& vm, kvm::GuestMemory& mem, Program p,
                                  kvm::abi::MemoryFlags flags) {
  std::span<std::uint8_t> ram = mem.add(vm, 0, kRamSize, flags);
  write_image(ram, p);
  return ram;
}
}  // namespace

OurGuest::OurGuest(Program p, kvm::VcpuOptions options, kvm::abi::MemoryFlags flags)
    : vm(system().create_vm()),
      ram(add_image(vm, mem, p, flags)),
      vcpu(vm.create_vcpu(0, options)) {
  kvm::abi::kvm_sregs sregs = vcpu.sregs();
  init_sregs(sregs);
  vcpu.set_sregs(sregs);
  kvm::abi::kvm_regs regs;
  init_regs(regs);
  vcpu.set_regs(regs);
}

}  // namespace bench

// guest_memfd on this host's KVM: KVM_CREATE_GUEST_MEMFD, KVM_SET_USER_MEMORY_REGION2 and
// GuestMemory regions backed by a mapped guest_memfd, with a real guest running from one.
#include <catch2/catch.hpp>

#include <dirent.h>

#include <fstream>
#include <string>

#include "guest.h"

namespace abi = kvm::abi;
using kvm::ExitReason;
using testing::Assembler;
using testing::Reg;
using testing::Width;

namespace {

constexpr std::uint64_t kMmap = abi::consts::GuestMemfdFlagMmap;
constexpr std::uint64_t kInitShared = abi::consts::GuestMemfdFlagInitShared;
constexpr std::uint16_t kSerial = 0x3f8;
constexpr std::uint16_t kResultPort = 0x500;
constexpr std::uint16_t kEchoPort = 0x501;
constexpr std::uint64_t kMmioDevice = 0x10000000;
constexpr std::uint64_t kMessageAddr = 0x20000;
constexpr std::uint64_t kSumAddr = 0x30000;
constexpr char kMessage[] = "Hello from guest_memfd!\n";

// The hello guest (examples/hello): prints on COM1, reports 1 + ... + 100 on a port and in
// memory, writes an MMIO status register, echoes an MMIO read on another port, halts.
void hello_program(Assembler& a) {
  using kvm::x86::mem;
  a.mov(Reg::Rsi, kMessageAddr);
  a.mov(Reg::Rcx, sizeof(kMessage) - 1);
  a.mov(Reg::Rdx, kSerial);
  auto next = a.new_label();
  a.bind(next);
  a.load_zx(Width::k8, Reg::Rax, mem(Reg::Rsi));
  a.out_dx(Width::k8);
  a.inc(Reg::Rsi);
  a.dec(Reg::Rcx);
  a.jne(next);
  a.xor_(Reg::Rax, Reg::Rax);
  a.mov(Reg::Rcx, 100);
  auto sum = a.new_label();
  a.bind(sum);
  a.add(Reg::Rax, Reg::Rcx);
  a.dec(Reg::Rcx);
  a.jne(sum);
  a.mov(Reg::Rbx, kSumAddr);
  a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);
  a.mov(Reg::Rdx, kResultPort);
  a.out_dx(Width::k32);
  a.mov(Reg::Rbx, kMmioDevice);
  a.mov(Reg::Rax, 0x600d);
  a.store(Width::k32, mem(Reg::Rbx, 0), Reg::Rax);
  a.load(Width::k32, Reg::Rax, mem(Reg::Rbx, 4));
  a.mov(Reg::Rdx, kEchoPort);
  a.out_dx(Width::k32);
  a.hlt();
}

// Skips unless the host offers mappable, initially shared guest_memfd.
#define REQUIRE_SHARED_GUEST_MEMFD(sys)                                                      \
  do {                                                                                       \
    REQUIRE_CAP(sys, abi::Cap::GuestMemfd);                                                  \
    int offered = (sys).check_extension(abi::Cap::GuestMemfdFlags);                          \
    if ((offered & (kMmap | kInitShared)) != (kMmap | kInitShared))                          \
      KVM_TEST_SKIP("the host reports KVM_CAP_GUEST_MEMFD_FLAGS = " << offered               \
                                                                    << ", without MMAP and " \
                                                                       "INIT_SHARED");       \
  } while (0)

std::size_t open_fds() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d)) ++n;
  ::closedir(d);
  return n;
}

std::size_t mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kvm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("guest_memfd: the hello guest runs from guest_memfd memory, IO and MMIO included") {
  kvm::System sys;
  REQUIRE_SHARED_GUEST_MEMFD(sys);
  testing::GuestOptions o;
  o.guest_memfd = true;
  testing::LongModeGuest g(hello_program, o);
  REQUIRE(g.mem.regions().size() == 1);
  const kvm::MemoryRegion* slot = g.vm.memory_region(g.mem.regions()[0].slot);
  REQUIRE(slot != nullptr);
  CHECK(slot->guest_memfd >= 0);
  CHECK((slot->flags & abi::MemoryFlags::GuestMemfd) == abi::MemoryFlags::GuestMemfd);
  g.mem.write(kMessageAddr,
              {reinterpret_cast<const std::uint8_t*>(kMessage), sizeof(kMessage) - 1});

  std::string serial;
  std::uint32_t result = 0, echo = 0;
  std::uint64_t status = 0;
  for (;;) {
    kvm::Exit e = g.run();
    if (e.reason() == ExitReason::Hlt) break;
    if (e.reason() == ExitReason::Io && e.io().port() == kSerial) {
      for (std::uint8_t b : e.io().data()) serial += static_cast<char>(b);
    } else if (e.reason() == ExitReason::Io && e.io().port() == kResultPort) {
      result = e.io().value();
    } else if (e.reason() == ExitReason::Io && e.io().port() == kEchoPort) {
      echo = e.io().value();
    } else if (e.reason() == ExitReason::Mmio && e.mmio().is_write()) {
      CHECK(e.mmio().phys_addr() == kMmioDevice);
      status = e.mmio().value();
    } else if (e.reason() == ExitReason::Mmio) {
      CHECK(e.mmio().phys_addr() == kMmioDevice + 4);
      e.mmio().set_value(0xc0ffee);
    } else {
      FAIL("unexpected exit " << e.name());
    }
  }
  CHECK(serial == kMessage);
  CHECK(result == 5050);
  CHECK(status == 0x600d);
  CHECK(echo == 0xc0ffee);
  // What the guest stored is in the guest_memfd, seen through the host mapping.
  CHECK(g.mem.read_obj<std::uint32_t>(kSumAddr) == 5050);
}

TEST_CASE("guest_memfd: flags are checked against KVM_CAP_GUEST_MEMFD_FLAGS, size against pages") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::GuestMemfd);
  kvm::Vm vm = sys.create_vm();
  auto offered = static_cast<std::uint64_t>(vm.check_extension(abi::Cap::GuestMemfdFlags));
  const std::uint64_t unoffered = std::uint64_t{1} << 40;
  REQUIRE((offered & unoffered) == 0);
  std::string err = error_of([&] { vm.create_guest_memfd(1 << 20, kMmap | unoffered); });
  CHECK_THAT(err, Catch::Contains("KVM_CREATE_GUEST_MEMFD: Invalid argument"));
  CHECK_THAT(err, Catch::Contains("0x10000000000 not among KVM_CAP_GUEST_MEMFD_FLAGS"));
  // The kernel refuses the same request.
  abi::kvm_create_guest_memfd raw{};
  raw.size = 1 << 20;
  raw.flags = kMmap | unoffered;
  CHECK(vm.try_ioctl<abi::ioctl::CreateGuestMemfd>(raw) == -EINVAL);

  CHECK_THAT(error_of([&] { vm.create_guest_memfd(0x1800); }),
             Catch::Contains("size is not a non-zero multiple of 4 KiB"));
  kvm::GuestMemfd plain = vm.create_guest_memfd(1 << 20);
  CHECK(plain.size() == 1 << 20);
  CHECK_FALSE(plain.mappable());
  if (offered & kMmap) {
    kvm::GuestMemfd mappable = vm.create_guest_memfd(1 << 20, kMmap);
    CHECK(mappable.mappable());
  }
}

TEST_CASE("guest_memfd: a slot whose guest_memfd range is out of bounds or misaligned is refused") {
  kvm::System sys;
  REQUIRE_CAP(sys, abi::Cap::GuestMemfd);
  REQUIRE_CAP(sys, abi::Cap::UserMemory2);
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemfd memfd = vm.create_guest_memfd(0x100000);
  kvm::HostMapping host(0x200000);
  kvm::MemoryRegion r;
  r.slot = 3;
  r.guest_phys_addr = 0x400000;
  r.size = 0x100000;
  r.host_addr = host.data();
  r.guest_memfd = memfd.fd();

  // Each refusal is ours, and the kernel refuses the same slot.
  auto kernel_refuses = [&](const kvm::MemoryRegion& bad) {
    abi::kvm_userspace_memory_region2 k{};
    k.slot = bad.slot;
    k.flags = abi::to_underlying(bad.flags | abi::MemoryFlags::GuestMemfd);
    k.guest_phys_addr = bad.guest_phys_addr;
    k.memory_size = bad.size;
    k.userspace_addr = reinterpret_cast<std::uint64_t>(bad.host_addr);
    k.guest_memfd = static_cast<std::uint32_t>(bad.guest_memfd);
    k.guest_memfd_offset = bad.guest_memfd_offset;
    return vm.try_ioctl<abi::ioctl::SetUserMemoryRegion2>(k) == -EINVAL;
  };
  kvm::MemoryRegion beyond = r;
  beyond.guest_memfd_offset = 0x1000;
  CHECK(error_of([&] { vm.set_user_memory_region2(beyond); }) ==
        "KVM_SET_USER_MEMORY_REGION2: Invalid argument (slot 3: guest_memfd offset 0x1000 + size "
        "0x100000 exceeds the guest_memfd's 0x100000 bytes)");
  CHECK(kernel_refuses(beyond));
  kvm::MemoryRegion misaligned = r;
  misaligned.guest_memfd_offset = 0x800;
  misaligned.size = 0x1000;
  CHECK(error_of([&] { vm.set_user_memory_region2(misaligned); }) ==
        "KVM_SET_USER_MEMORY_REGION2: Invalid argument (slot 3: guest_memfd offset 0x800 is not "
        "4 KiB aligned)");
  CHECK(kernel_refuses(misaligned));
  kvm::MemoryRegion dirty = r;
  dirty.flags = abi::MemoryFlags::LogDirtyPages;
  CHECK_THAT(error_of([&] { vm.set_user_memory_region2(dirty); }),
             Catch::Contains("KVM_MEM_LOG_DIRTY_PAGES is not supported on a guest_memfd slot"));
  CHECK(kernel_refuses(dirty));
  kvm::MemoryRegion no_fd = r;
  no_fd.guest_memfd = -1;
  no_fd.flags = abi::MemoryFlags::GuestMemfd;
  CHECK_THAT(error_of([&] { vm.set_user_memory_region2(no_fd); }),
             Catch::Contains("slot 3: KVM_MEM_GUEST_MEMFD without a guest_memfd fd"));
  CHECK_THAT(error_of([&] { vm.set_user_memory_region(r); }),
             Catch::Contains("a guest_memfd needs set_user_memory_region2"));
  CHECK(vm.memory_regions().empty());

  vm.set_user_memory_region2(r);
  REQUIRE(vm.memory_region(3) != nullptr);
  CHECK(vm.memory_region(3)->guest_memfd == memfd.fd());
  // The bookkeeping of the first ioctl applies to the second: overlaps are still caught.
  kvm::MemoryRegion overlap = r;
  overlap.slot = 4;
  overlap.guest_memfd = -1;
  CHECK_THAT(error_of([&] { vm.set_user_memory_region2(overlap); }),
             Catch::Contains("overlaps slot 3"));
  vm.delete_memory_region(3);
  CHECK(vm.memory_regions().empty());
}

TEST_CASE("guest_memfd: GuestMemory needs a mappable one, and leaks nothing on any path") {
  kvm::System sys;
  REQUIRE_SHARED_GUEST_MEMFD(sys);
  const std::size_t fds = open_fds(), maps = mappings();
  {
    kvm::Vm vm = sys.create_vm();
    kvm::GuestMemory mem;
    kvm::GuestMemfd plain = vm.create_guest_memfd(0x10000);
    CHECK_THAT(error_of([&] { mem.add_guest_memfd(vm, 0, plain, 0, 0x10000); }),
               Catch::Contains("was created without GUEST_MEMFD_FLAG_MMAP"));
    kvm::GuestMemfd shared = vm.create_guest_memfd(0x10000, kMmap | kInitShared);
    CHECK_THAT(error_of([&] { mem.add_guest_memfd(vm, 0, shared, 0x8000, 0x10000); }),
               Catch::Contains("offset 0x8000 + size 0x10000 exceeds the guest_memfd's 0x10000"));
    auto bytes = mem.add_guest_memfd(vm, 0, shared, 0x8000, 0x8000);
    bytes[0] = 0x5a;
    // Another slot over the same guest addresses fails in the kernel's stead; its mapping goes.
    const std::size_t before = mappings();
    CHECK_THAT(error_of([&] { mem.add_guest_memfd(vm, 0x4000, 0x4000); }),
               Catch::Contains("overlaps slot 0"));
    CHECK(mappings() == before);
    // The same guest_memfd bytes seen through a second mapping of the file.
    kvm::HostMapping again(shared.fd(), 0x8000, 0x1000);
    CHECK(again.data()[0] == 0x5a);
  }
  CHECK(open_fds() == fds);
  CHECK(mappings() == maps);
}

// The API's contracts that need no running guest: compile-time checks of the typed ioctl
// call, error texts of bad input, close-on-exec fds, caps and exit reasons newer than the
// headers, and defensive decoding of exit data.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "guest.h"
#include "kvm/abi/ioctl_table.h"
#include "kvm/format.h"

namespace abi = kvm::abi;
using kvm::ExitReason;

// ---- compile time: scope and argument type ------------------------------------------------
template <class Handle, class Io, class Arg>
concept CanCall = requires(Handle& h, Arg& a) {
  h.template ioctl<Io>(a);
};
template <class Handle, class Io>
concept CanCallNoArg = requires(Handle& h) {
  h.template ioctl<Io>();
};

template <class Handle, class Io, class Arg>
concept CanTry = requires(Handle& h, Arg& a) {
  h.template try_ioctl<Io>(a);
};
template <class Handle, class Io>
concept CanAskSupport = requires(Handle& h) {
  h.template supports<Io>();
};

// A misused call selects a deleted overload (whose error says why, tests/misuse/): still not
// a valid expression.
static_assert(CanCall<kvm::Vcpu, abi::ioctl::GetRegs, abi::kvm_regs>);
static_assert(CanTry<kvm::Vcpu, abi::ioctl::GetRegs, abi::kvm_regs>);
static_assert(!CanTry<kvm::Vm, abi::ioctl::GetRegs, abi::kvm_regs>);
static_assert(!CanTry<kvm::Vcpu, abi::ioctl::SetRegs, const abi::kvm_regs>);
static_assert(CanAskSupport<kvm::Vcpu, abi::ioctl::GetXsave>);
static_assert(!CanAskSupport<kvm::System, abi::ioctl::GetXsave>);
static_assert(!CanCall<kvm::Vcpu, abi::ioctl::GetRegs, const char*>, "not a kvm_regs");
static_assert(!CanCallNoArg<kvm::Vcpu, abi::ioctl::GetRegs>, "a pointer ioctl needs its argument");
static_assert(!CanCall<kvm::Vm, abi::ioctl::GetRegs, abi::kvm_regs>, "a vCPU ioctl on a Vm");
static_assert(!CanCall<kvm::System, abi::ioctl::GetRegs, abi::kvm_regs>);
static_assert(!CanCall<kvm::Vcpu, abi::ioctl::GetRegs, abi::kvm_sregs>, "wrong argument type");
static_assert(!CanCall<kvm::Vcpu, abi::ioctl::SetRegs, const abi::kvm_regs>,
              "const for a kernel write");
static_assert(CanCall<kvm::Vm, abi::ioctl::SetUserMemoryRegion, abi::kvm_userspace_memory_region>);
static_assert(
    !CanCall<kvm::Vcpu, abi::ioctl::SetUserMemoryRegion, abi::kvm_userspace_memory_region>);
static_assert(CanCallNoArg<kvm::System, abi::ioctl::CheckExtension>);
static_assert(CanCallNoArg<kvm::Vm, abi::ioctl::CheckExtension>,
              "KVM_CHECK_EXTENSION works on VMs too");
static_assert(!CanCallNoArg<kvm::Vcpu, abi::ioctl::CheckExtension>);
static_assert(CanCall<kvm::Device, abi::ioctl::SetDeviceAttr, abi::kvm_device_attr>);
static_assert(!CanCallNoArg<kvm::Vm, abi::ioctl::Run>);
// Unavailable on x86 (argument type undefined) and deprecated aliases are refused.
static_assert(!abi::ioctl::ArmVcpuInit::available);
static_assert(!CanCall<kvm::Vcpu, abi::ioctl::ArmVcpuInit, void>);
// The newest headers define no deprecated alias (6.1's KVM_TRACE_ENABLE is gone): a
// descriptor written like a generated one stands in for it.
struct DeprecatedTraceEnable {  // 6.1: KVM_TRACE_ENABLE, __KVM_DEPRECATED_MAIN_W_0x06
  static constexpr char name[] = "KVM_TRACE_ENABLE";
  static constexpr std::uint64_t request = 0x4008AE06;
  static constexpr abi::Scope scopes = abi::Scope::System;
  using arg_type = std::uint64_t;
  static constexpr bool available = true;
  static constexpr bool deprecated = true;
};
static_assert(!CanCall<kvm::System, DeprecatedTraceEnable, std::uint64_t>);
// A descriptor written by hand may name no capability: capability_on<Io>() then knows none.
static_assert(!abi::capability_on<DeprecatedTraceEnable>(abi::Scope::System));
// Capabilities are part of the descriptors.
static_assert(abi::ioctl::GetXsave::capability == abi::Cap::Xsave);
static_assert(std::string_view(abi::ioctl_name(abi::ioctl::GetRegs::request)) == "KVM_GET_REGS");
static_assert(!abi::ioctl::GetRegs::capability);
static_assert(std::string_view(abi::ioctl_name(0)).empty());

TEST_CASE("handles are move-only and every fd is close-on-exec") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<kvm::Vm>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<kvm::Vcpu>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<kvm::Vcpu>);
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  kvm::Fd stats = vm.stats_fd();
  for (int fd : {sys.fd(), vm.fd(), vcpu.fd(), stats.get()}) {
    INFO("fd " << fd);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  }
}

TEST_CASE("system: API version, capabilities named and unnamed, mmap size") {
  kvm::System sys;
  CHECK(sys.api_version() == kvm::kStableApiVersion);
  CHECK(sys.check_extension(abi::Cap::UserMemory) > 0);
  CHECK(sys.vcpu_mmap_size() >= sizeof(abi::kvm_run));
  // A capability number beyond the headers is asked like any other; its name is unknown.
  abi::Cap future{400};
  CHECK(sys.check_extension(future) >= 0);
  CHECK(abi::to_string(future).empty());
  CHECK(abi::from_string<abi::Cap>("KVM_CAP_SYNC_REGS") == abi::Cap::SyncRegs);
  CHECK_FALSE(abi::from_string<abi::Cap>("KVM_CAP_NOT_A_CAP").has_value());
  CHECK(abi::flags_to_string(abi::MemoryFlags::LogDirtyPages | abi::MemoryFlags::Readonly) ==
        "KVM_MEM_LOG_DIRTY_PAGES|KVM_MEM_READONLY");
  CHECK(abi::flags_to_string(static_cast<abi::MemoryFlags>(0x10)) == "0x10");
}

TEST_CASE("errors name the ioctl, errno and what was wrong") {
  CHECK_THROWS_WITH(kvm::System("/nonexistent/kvm"),
                    "open: No such file or directory (/nonexistent/kvm)");
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  int max_id = vm.check_extension(abi::Cap::MaxVcpuId);
  REQUIRE(max_id > 0);
  CHECK_THROWS_WITH(vm.create_vcpu(static_cast<unsigned>(max_id) + 904),
                    "KVM_CREATE_VCPU: Invalid argument (vcpu id " + std::to_string(max_id + 904) +
                        " >= KVM_CAP_MAX_VCPU_ID " + std::to_string(max_id) + ")");
  vm.create_vcpu(0);
  try {
    vm.create_vcpu(0);
    FAIL("a second vCPU 0 was accepted");
  } catch (const kvm::Error& e) {
    CHECK(e.operation() == "KVM_CREATE_VCPU");
    CHECK(e.errno_value() == EEXIST);
    CHECK(std::string(e.what()) == "KVM_CREATE_VCPU: File exists (vcpu id 0)");
  }

  kvm::HostMapping m(1 << 20);
  auto region = [&](std::uint32_t slot, std::uint64_t gpa, std::uint64_t size,
                    std::size_t host_off = 0) {
    kvm::MemoryRegion r;
    r.slot = slot;
    r.guest_phys_addr = gpa;
    r.size = size;
    r.host_addr = m.data() + host_off;
    return r;
  };
  vm.set_user_memory_region(region(1, 0x100000, 0x80000));
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(3, 0x140000, 0x80000)),
                    "KVM_SET_USER_MEMORY_REGION: File exists (slot 3 [0x140000, 0x1c0000) overlaps "
                    "slot 1 [0x100000, 0x180000))");
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(2, 0x1234, 0x1000)),
                    "KVM_SET_USER_MEMORY_REGION: Invalid argument (slot 2: guest address 0x1234 is "
                    "not 4 KiB aligned)");
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(2, 0x200000, 0x1001)),
                    "KVM_SET_USER_MEMORY_REGION: Invalid argument (slot 2: size 0x1001 is not a "
                    "multiple of 4 KiB)");
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(2, 0x200000, 0x1000, 8)),
                    "KVM_SET_USER_MEMORY_REGION: Invalid argument (slot 2: host address " +
                        kvm::detail::hex(reinterpret_cast<std::uintptr_t>(m.data() + 8)) +
                        " is not 4 KiB aligned)");
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(2, 0x200000, 0)),
                    Catch::Contains("size 0; use delete_memory_region()"));
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(2, ~0ull - 0xfff, 0x2000)),
                    Catch::Contains("guest range wraps around"));
  int slots = vm.check_extension(abi::Cap::NrMemslots);
  CHECK_THROWS_WITH(
      vm.set_user_memory_region(region(static_cast<std::uint32_t>(slots), 0x400000, 0x1000)),
      "KVM_SET_USER_MEMORY_REGION: Invalid argument (slot " + std::to_string(slots) +
          " >= KVM_CAP_NR_MEMSLOTS " + std::to_string(slots) + ")");
  unsigned bits = vm.phys_addr_bits();
  CHECK(bits >= 36);
  std::uint64_t top = std::uint64_t{1} << bits;
  CHECK_THROWS_WITH(vm.set_user_memory_region(region(2, top - 0x1000, 0x2000)),
                    Catch::EndsWith("reaches beyond the host's " + std::to_string(bits) +
                                    "-bit physical address space)"));
  auto bad_flags = region(2, 0x400000, 0x1000);
  bad_flags.flags = static_cast<abi::MemoryFlags>(0x80);
  CHECK_THROWS_WITH(vm.set_user_memory_region(bad_flags), Catch::Contains("unknown flags 0x80"));
  CHECK(vm.memory_regions().size() == 1);  // nothing half-registered
  vm.delete_memory_region(1);
  CHECK(vm.memory_regions().empty());
  CHECK_THROWS_WITH(vm.delete_memory_region(1), Catch::Contains("slot 1 was never set"));

  // A moved-from handle has no fd: its ioctls fail cleanly with EBADF.
  kvm::Vm moved = std::move(vm);
  CHECK_THROWS_WITH(vm.check_extension(abi::Cap::UserMemory),
                    "KVM_CHECK_EXTENSION: Bad file descriptor");
  CHECK(moved.check_extension(abi::Cap::UserMemory) > 0);
}

TEST_CASE("an ioctl gated by a capability the host lacks names the capability in its error") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::Vcpu vcpu = vm.create_vcpu(0);

  // Present capability, failure for another reason: the error is the kernel's, unchanged.
  REQUIRE_CAP(sys, abi::Cap::Xcrs);
  abi::kvm_xcrs xcrs{};
  xcrs.nr_xcrs = 1000;  // more than KVM_MAX_XCRS
  CHECK_THROWS_WITH(vcpu.ioctl<abi::ioctl::SetXcrs>(xcrs), "KVM_SET_XCRS: Invalid argument");

  // Absent capability: the error says which one. The descriptors carry the capability, so
  // the check below is the same one the runtime makes (KVM_CHECK_EXTENSION == 0).
  static_assert(abi::ioctl::GetNestedState::capability == abi::Cap::NestedState);
  // Where the capability depends on the fd, the runtime asks about the one it used.
  // abi::capability_on<Io>() takes a descriptor's capability_on() where it has one, else its
  // one capability.
  static_assert(abi::capability_on<abi::ioctl::SetTscKhz>(abi::Scope::Vcpu) ==
                abi::Cap::TscControl);
  static_assert(abi::capability_on<abi::ioctl::SetTscKhz>(abi::Scope::Vm) ==
                abi::Cap::VmTscControl);
  static_assert(abi::capability_on<abi::ioctl::EnableCap>(abi::Scope::Vm) == abi::Cap::EnableCapVm);
  static_assert(!abi::capability_on<abi::ioctl::GetMsrs>(abi::Scope::Vcpu));
  static_assert(abi::capability_on<abi::ioctl::GetMsrs>(abi::Scope::System) ==
                abi::Cap::GetMsrFeatures);
  static_assert(!abi::capability_on<abi::ioctl::GetRegs>(abi::Scope::Vcpu));
  static_assert(abi::capability_on<abi::ioctl::GetLapic>(abi::Scope::Vcpu) == abi::Cap::Irqchip);
  static_assert(abi::ioctl::Smi::capability == abi::Cap::X86Smm);
  // supports<Io>() asks the same question before the call.
  CHECK(vcpu.supports<abi::ioctl::GetNestedState>() ==
        (sys.check_extension(abi::Cap::NestedState) > 0));
  CHECK(vcpu.supports<abi::ioctl::Smi>() == (sys.check_extension(abi::Cap::X86Smm) > 0));
  CHECK(vm.supports<abi::ioctl::SetTscKhz>() == (vm.check_extension(abi::Cap::VmTscControl) > 0));
  CHECK(vcpu.supports<abi::ioctl::SetTscKhz>() == (sys.check_extension(abi::Cap::TscControl) > 0));
  CHECK(sys.supports<abi::ioctl::GetMsrs>() == (sys.check_extension(abi::Cap::GetMsrFeatures) > 0));
  CHECK(vcpu.supports<abi::ioctl::GetMsrs>());  // basic on vCPU fds: no capability to ask
  CHECK(sys.supports<abi::ioctl::GetApiVersion>());
  CHECK(vcpu.supports<abi::ioctl::SetXcrs>());  // KVM_CAP_XCRS, required above

  int checked = 0;
  if (sys.check_extension(abi::Cap::NestedState) == 0) {
    abi::kvm_nested_state st{};
    st.size = sizeof st;
    CHECK_THROWS_WITH(vcpu.ioctl<abi::ioctl::GetNestedState>(st),
                      Catch::StartsWith("KVM_GET_NESTED_STATE: ") &&
                          Catch::EndsWith("(KVM_CAP_NESTED_STATE is not supported here)"));
    ++checked;
  }
  if (sys.check_extension(abi::Cap::X86Smm) == 0) {
    int r = vcpu.try_ioctl<abi::ioctl::Smi>();
    if (r < 0) {
      CHECK_THROWS_WITH(vcpu.ioctl<abi::ioctl::Smi>(),
                        Catch::StartsWith("KVM_SMI: ") &&
                            Catch::EndsWith("(KVM_CAP_X86_SMM is not supported here)"));
      ++checked;
    } else {
      KVM_TEST_NOTE("KVM_SMI succeeded although KVM_CAP_X86_SMM reads 0");
    }
  }
  if (checked == 0)
    KVM_TEST_SKIP(
        "the host reports both KVM_CAP_NESTED_STATE and KVM_CAP_X86_SMM: no absent "
        "capability to provoke");
}

// An ioctl newer than the generated headers: the user writes the descriptor. `capability` is
// optional; the checks of scope and argument type apply as to generated descriptors.
namespace {
struct HandGetApiVersion {  // KVM_GET_API_VERSION, _IO(KVMIO, 0x00)
  static constexpr char name[] = "KVM_GET_API_VERSION (hand-written)";
  static constexpr std::uint64_t request = 0xAE00;
  static constexpr abi::Scope scopes = abi::Scope::System;
  using arg_type = void;
  static constexpr bool available = true;
  static constexpr bool deprecated = false;
};
struct HandUnknown {  // a number no kernel uses: _IO(KVMIO, 0xFE)
  static constexpr char name[] = "KVM_FROM_THE_FUTURE";
  static constexpr std::uint64_t request = 0xAEFE;
  static constexpr abi::Scope scopes = abi::Scope::System | abi::Scope::Vm;
  using arg_type = void;
  static constexpr bool available = true;
  static constexpr bool deprecated = false;
};
}  // namespace

TEST_CASE("hand-written descriptors for ioctls newer than the headers") {
  kvm::System sys;
  CHECK(sys.ioctl<HandGetApiVersion>() == 12);
  // /dev/kvm turns unknown requests down with EINVAL (x86), other fds with ENOTTY.
  int err = -sys.try_ioctl<HandUnknown>();
  CHECK((err == EINVAL || err == ENOTTY));
  CHECK_THROWS_WITH(sys.ioctl<HandUnknown>(),
                    "KVM_FROM_THE_FUTURE: " + std::generic_category().message(err));
  static_assert(kvm::UsableOn<HandUnknown, abi::Scope::Vm>);
  static_assert(!kvm::UsableOn<HandGetApiVersion, abi::Scope::Vm>);  // scope still checked
}

TEST_CASE("failed vCPU creation leaves no fd behind") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  auto count_fds = [] {
    int n = 0;
    for (int fd = 0; fd < 4096; ++fd) n += ::fcntl(fd, F_GETFD) != -1;
    return n;
  };
  int before = count_fds();
  for (int i = 0; i < 50; ++i) CHECK_THROWS_AS(vm.create_vcpu(100000), kvm::Error);
  CHECK(count_fds() == before);
}

TEST_CASE("guest memory: bounds-checked, overflow-safe access") {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemory mem;
  mem.add(vm, 0x1000, 0x2000);
  mem.add(vm, 0x10000, 0x1000);
  mem.write_obj<std::uint64_t>(0x2ff8, 0x1122334455667788ull);
  CHECK(mem.read_obj<std::uint64_t>(0x2ff8) == 0x1122334455667788ull);
  CHECK(mem.contains(0x1000, 0x2000));
  CHECK_FALSE(mem.contains(0x2ff9, 8));      // crosses the region's end
  CHECK_FALSE(mem.contains(0x3000, 1));      // between regions
  CHECK_FALSE(mem.contains(0x1000, ~0ull));  // a length that would overflow
  CHECK_FALSE(mem.contains(~0ull, 2));
  CHECK_THROWS_WITH(mem.read_obj<std::uint64_t>(0x2ffc),
                    "guest memory: Bad address ([0x2ffc, +0x8) is not inside one memory region)");
  CHECK_THROWS_AS(mem.span(0x10000, 0x1001), kvm::Error);
  CHECK(mem.span(0x10000, 0x1000).size() == 0x1000);
  CHECK_THROWS_WITH(mem.add(vm, 0x2000, 0x1000), Catch::Contains("overlaps slot 0"));
}

TEST_CASE("exit views: the wrong accessor, unknown reasons and corrupt data are errors") {
  // A kvm_run page of our own, so that any content can be fed to the decoder.
  std::vector<std::uint8_t> page(3 * 4096);
  auto& run = *reinterpret_cast<abi::kvm_run*>(page.data());
  run.exit_reason = abi::to_underlying(ExitReason::Io);
  run.io.direction = 1;
  run.io.size = 2;
  run.io.port = 0x3f8;
  run.io.count = 3;
  run.io.data_offset = 4096;
  kvm::Exit e(run, page.size(), kvm::RunStatus::Exited);
  CHECK(e.known());
  CHECK(e.name() == "KVM_EXIT_IO");
  CHECK(e.io().data().size() == 6);
  CHECK(e.io().data().data() == page.data() + 4096);
  CHECK_THROWS_WITH(e.mmio(), "Exit::mmio(): this exit is KVM_EXIT_IO, not KVM_EXIT_MMIO");
  CHECK_THROWS_AS(e.hypercall(), kvm::WrongExitError);
  CHECK_THROWS_AS(e.msr(), kvm::WrongExitError);

  // Corrupt data is the kernel's (or the mapping's) fault, not the caller's: ExitDataError.
  run.io.data_offset = page.size() - 4;  // 6 bytes would run past the mapping
  CHECK_THROWS_WITH(e.io(), Catch::Contains("lies outside the 12288-byte kvm_run mapping"));
  CHECK_THROWS_AS(e.io(), kvm::ExitDataError);
  run.io.data_offset = ~0ull;
  CHECK_THROWS_AS(e.io(), kvm::ExitDataError);
  run.io.data_offset = 4096;
  run.io.count = 0xffffffff;  // size * count overflowing 32 bits must still be caught
  CHECK_THROWS_AS(e.io(), kvm::ExitDataError);
  run.io.count = 1;
  run.io.size = 3;
  CHECK_THROWS_WITH(e.io(), "Exit::io(): access size 3 is not 1, 2 or 4");
  CHECK_THROWS_AS(e.io(), kvm::ExitDataError);

  run.exit_reason = abi::to_underlying(ExitReason::Mmio);
  run.mmio.len = 9;
  CHECK_THROWS_WITH(e.mmio(), "Exit::mmio(): length 9 exceeds 8");
  CHECK_THROWS_AS(e.mmio(), kvm::ExitDataError);

  run.exit_reason = abi::to_underlying(ExitReason::SystemEvent);
  run.system_event.type = abi::to_underlying(abi::SystemEventType::Reset);
  run.system_event.ndata = 1000;  // clamped to the 16 words that exist
  CHECK(e.system_event().type == abi::SystemEventType::Reset);
  CHECK(e.system_event().data.size() == 16);

  run.exit_reason = abi::to_underlying(ExitReason::InternalError);
  run.internal.suberror = abi::to_underlying(abi::InternalErrorSuberror::Emulation);
  run.internal.ndata = 2;
  CHECK(e.internal_error().data.size() == 2);
  CHECK(e.emulation_failure().insn_bytes.empty());  // no InstructionBytes flag
  run.emulation_failure.flags = abi::to_underlying(abi::EmulationFailureFlags::InstructionBytes);
  run.emulation_failure.insn_size = 15;
  run.emulation_failure.insn_bytes[14] = 0x90;
  CHECK(e.emulation_failure().insn_bytes.size() == 15);
  CHECK(e.emulation_failure().insn_bytes.data() == run.emulation_failure.insn_bytes);
  run.emulation_failure.insn_size = 255;  // next to a 15-byte array
  CHECK_THROWS_WITH(e.emulation_failure(),
                    "Exit::emulation_failure(): instruction size 255 exceeds the 15 bytes of "
                    "insn_bytes");
  CHECK_THROWS_AS(e.emulation_failure(), kvm::ExitDataError);
  run.internal.suberror = 2;
  CHECK_THROWS_AS(e.emulation_failure(), kvm::WrongExitError);

  run.exit_reason = 200;  // newer than the headers
  CHECK_FALSE(e.known());
  CHECK(e.name() == "KVM_EXIT_#200");
  CHECK(e.raw_reason() == 200);
  CHECK_THROWS_WITH(e.io(), "Exit::io(): this exit is KVM_EXIT_#200, not KVM_EXIT_IO");

  // Every exit reason the headers define has a name and decodes without touching other data.
  for (const auto& entry : abi::EnumTraits<ExitReason>::entries) {
    run.exit_reason = abi::to_underlying(entry.value);
    CHECK(e.name() == entry.name);
  }
}

// Fuzzes the typed exit decoder (runtime/kvm/exit.h) with arbitrary kvm_run contents.
//
// Input: byte 0 = run status (bit 0: interrupted, bit 1: EAGAIN instead of EINTR, bit 2: the
// interruption is run_for()'s timeout), bytes 1-2 =
// mapping size selector (little endian; the mapping is sizeof(kvm_run) .. 3 pages), then the
// bytes of the mapping from offset 0 (the rest is zero). The mapping is a heap block of exactly
// that size, so AddressSanitizer reports any read or write past it.
//
// Every accessor of kvm::Exit is called. Each must either succeed, throw kvm::WrongExitError
// (the wrong accessor for this exit, or an interrupted run) or throw kvm::ExitDataError (the
// right accessor, data that cannot be valid); which one is checked against an independent
// model of the exit's validity, and every byte of what a successful accessor returns
// (references, spans) is read and rewritten.
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz/fuzz_util.h"
#include "kvm/exit.h"

namespace abi = kvm::abi;
using kvm::ExitReason;
using kvm_fuzz::touch;
using kvm_fuzz::touch_obj;
using kvm_fuzz::touch_rw;

namespace {

constexpr std::size_t kMaxMapping = 3 * 4096;
constexpr std::size_t kMinMapping = sizeof(abi::kvm_run);

bool in_mapping(const void* p, std::size_t n, const std::uint8_t* base, std::size_t size) {
  auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(base);
  return a >= b && a - b <= size && n <= size - (a - b);
}

// Calls one accessor returning a reference to kvm_run data: it must succeed exactly when the
// run exited with one of `reasons`; on success every byte of the referenced data is rewritten.
template <class F>
void check_ref(const kvm::Exit& e, std::initializer_list<ExitReason> reasons, F&& call) {
  bool valid = false;
  for (ExitReason r : reasons) valid |= !e.interrupted() && e.reason() == r;
  try {
    auto& ref = call();
    FUZZ_CHECK(valid);
    touch_rw(&ref, sizeof(ref));
  } catch (const kvm::WrongExitError& err) {
    FUZZ_CHECK(!valid);
    touch(err.what(), std::char_traits<char>::length(err.what()));
  }
}

void check_io(const kvm::Exit& e, const std::uint8_t* base, std::size_t size) {
  const auto& io = e.run().io;
  bool right = !e.interrupted() && e.reason() == ExitReason::Io;
  bool valid = right && (io.size == 1 || io.size == 2 || io.size == 4) &&
               io.data_offset >= sizeof(kvm::abi::kvm_run) &&
               static_cast<unsigned __int128>(io.data_offset) +
                       static_cast<unsigned __int128>(io.size) * io.count <=
                   size;
  try {
    kvm::IoExit x = e.io();
    FUZZ_CHECK(valid);
    FUZZ_CHECK(x.size() == io.size && x.count() == io.count && x.port() == io.port);
    FUZZ_CHECK(x.is_in() != x.is_out());
    auto d = x.data();
    FUZZ_CHECK(d.size() == std::uint64_t{x.size()} * x.count());
    FUZZ_CHECK(d.data() == base + io.data_offset);
    FUZZ_CHECK(in_mapping(d.data(), d.size(), base, size));
    touch_rw(d.data(), d.size());
    std::uint32_t v = x.value();
    x.set_value(v ^ 0x5a5a5a5au);
    x.set_value(v);
    FUZZ_CHECK(x.value() == v);
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!right);
  } catch (const kvm::ExitDataError&) {
    FUZZ_CHECK(right && !valid);
  }
}

void check_mmio(const kvm::Exit& e, const std::uint8_t* base, std::size_t size) {
  bool right = !e.interrupted() && e.reason() == ExitReason::Mmio;
  bool valid = right && e.run().mmio.len <= 8;
  try {
    kvm::MmioExit x = e.mmio();
    FUZZ_CHECK(valid);
    auto d = x.data();
    FUZZ_CHECK(d.size() == x.len() && x.len() <= 8);
    FUZZ_CHECK(in_mapping(d.data(), d.size(), base, size));
    touch_rw(d.data(), d.size());
    std::uint64_t v = x.value();
    x.set_value(~v);
    x.set_value(v);
    FUZZ_CHECK(x.value() == v);
    (void)x.phys_addr();
    (void)x.is_write();
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!right);
  } catch (const kvm::ExitDataError&) {
    FUZZ_CHECK(right && !valid);
  }
}

void check_system_event(const kvm::Exit& e, const std::uint8_t* base, std::size_t size) {
  bool valid = !e.interrupted() && e.reason() == ExitReason::SystemEvent;
  try {
    kvm::SystemEventExit x = e.system_event();
    FUZZ_CHECK(valid);
    FUZZ_CHECK(x.data.size() <= 16 && x.data.size() <= e.run().system_event.ndata);
    FUZZ_CHECK(in_mapping(x.data.data(), x.data.size_bytes(), base, size));
    touch(x.data.data(), x.data.size_bytes());
    touch_obj(x.flags);
    touch_obj(x.type);
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!valid);
  }
}

void check_internal_error(const kvm::Exit& e, const std::uint8_t* base, std::size_t size) {
  bool valid = !e.interrupted() && e.reason() == ExitReason::InternalError;
  try {
    kvm::InternalErrorExit x = e.internal_error();
    FUZZ_CHECK(valid);
    FUZZ_CHECK(x.data.size() <= 16 && x.data.size() <= e.run().internal.ndata);
    FUZZ_CHECK(in_mapping(x.data.data(), x.data.size_bytes(), base, size));
    touch(x.data.data(), x.data.size_bytes());
    touch_obj(x.suberror);
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!valid);
  }
  bool emu = valid &&
             e.run().internal.suberror == abi::to_underlying(abi::InternalErrorSuberror::Emulation);
  const auto& raw = e.run().emulation_failure;
  bool has_bytes = raw.flags & abi::to_underlying(abi::EmulationFailureFlags::InstructionBytes);
  bool emu_valid = emu && (!has_bytes || raw.insn_size <= sizeof(raw.insn_bytes));
  try {
    kvm::EmulationFailureExit f = e.emulation_failure();
    FUZZ_CHECK(emu_valid);
    FUZZ_CHECK(f.insn_bytes.size() == (has_bytes ? raw.insn_size : 0u));
    FUZZ_CHECK(f.insn_bytes.empty() ||
               in_mapping(f.insn_bytes.data(), f.insn_bytes.size(), base, size));
    touch(f.insn_bytes.data(), f.insn_bytes.size());
    touch_obj(f.flags);
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!emu);
  } catch (const kvm::ExitDataError&) {
    FUZZ_CHECK(emu && !emu_valid);
  }
}

void check_iocsr(const kvm::Exit& e) {
  bool valid =
      !e.interrupted() && e.reason() == ExitReason::LoongarchIocsr && e.run().iocsr_io.len <= 8;
  try {
    auto& x = e.loongarch_iocsr();
    FUZZ_CHECK(valid);
    FUZZ_CHECK(x.len <= sizeof(x.data));
    touch_rw(x.data, x.len);
    touch_rw(&x, sizeof(x));
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!valid);
  }
}

void check_memory_fault(const kvm::Exit& e) {
  bool valid = !e.interrupted() && e.reason() == ExitReason::MemoryFault;
  try {
    kvm::MemoryFaultExit x = e.memory_fault();
    FUZZ_CHECK(valid);
    const auto& raw = e.run().memory_fault;
    FUZZ_CHECK(x.gpa == raw.gpa && x.size == raw.size && x.flags == raw.flags);
    FUZZ_CHECK(x.run_errno == e.run_errno());
    FUZZ_CHECK(x.is_private() == ((raw.flags & abi::consts::MemoryExitFlagPrivate) != 0));
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!valid);
  }
}

void check_all(const kvm::Exit& e, std::uint8_t* base, std::size_t size) {
  // Status and naming.
  (void)e.status();
  (void)e.run_errno();
  (void)e.raw_reason();
  std::string name = e.name();
  FUZZ_CHECK(!name.empty());
  FUZZ_CHECK(e.known() == (name.rfind("KVM_EXIT_#", 0) != 0));
  FUZZ_CHECK(&e.run() == reinterpret_cast<abi::kvm_run*>(base));

  check_io(e, base, size);
  check_mmio(e, base, size);
  check_system_event(e, base, size);
  check_internal_error(e, base, size);
  check_iocsr(e);
  check_memory_fault(e);

  check_ref(
      e, {ExitReason::Hypercall}, [&]() -> auto& { return e.hypercall(); });
  check_ref(
      e, {ExitReason::Debug}, [&]() -> auto& { return e.debug(); });
  check_ref(
      e, {ExitReason::FailEntry}, [&]() -> auto& { return e.fail_entry(); });
  check_ref(
      e, {ExitReason::Exception}, [&]() -> auto& { return e.exception(); });
  check_ref(
      e, {ExitReason::Unknown}, [&]() -> auto& { return e.unknown(); });
  check_ref(
      e, {ExitReason::TprAccess}, [&]() -> auto& { return e.tpr_access(); });
  check_ref(
      e, {ExitReason::X86Rdmsr, ExitReason::X86Wrmsr}, [&]() -> auto& { return e.msr(); });
  check_ref(
      e, {ExitReason::Notify}, [&]() -> auto& { return e.notify(); });
  check_ref(
      e, {ExitReason::IoapicEoi}, [&]() -> auto& { return e.ioapic_eoi(); });
  check_ref(
      e, {ExitReason::Hyperv}, [&]() -> auto& { return e.hyperv(); });
  check_ref(
      e, {ExitReason::Xen}, [&]() -> auto& { return e.xen(); });
  check_ref(
      e, {ExitReason::S390Sieic}, [&]() -> auto& { return e.s390_sieic(); });
  check_ref(
      e, {ExitReason::S390Ucontrol}, [&]() -> auto& { return e.s390_ucontrol(); });
  check_ref(
      e, {ExitReason::Dcr}, [&]() -> auto& { return e.dcr(); });
  check_ref(
      e, {ExitReason::Osi}, [&]() -> auto& { return e.osi(); });
  check_ref(
      e, {ExitReason::PaprHcall}, [&]() -> auto& { return e.papr_hcall(); });
  check_ref(
      e, {ExitReason::S390Tsch}, [&]() -> auto& { return e.s390_tsch(); });
  check_ref(
      e, {ExitReason::Epr}, [&]() -> auto& { return e.epr(); });
  check_ref(
      e, {ExitReason::S390Stsi}, [&]() -> auto& { return e.s390_stsi(); });
  check_ref(
      e, {ExitReason::ArmNisv}, [&]() -> auto& { return e.arm_nisv(); });
  check_ref(
      e, {ExitReason::RiscvSbi}, [&]() -> auto& { return e.riscv_sbi(); });
  check_ref(
      e, {ExitReason::RiscvCsr}, [&]() -> auto& { return e.riscv_csr(); });
  check_ref(
      e, {ExitReason::Tdx}, [&]() -> auto& { return e.tdx(); });
  check_ref(
      e, {ExitReason::ArmSea}, [&]() -> auto& { return e.arm_sea(); });
  check_ref(
      e, {ExitReason::ArmLdst64b}, [&]() -> auto& { return e.arm_ldst64b(); });
  check_ref(
      e, {ExitReason::SnpReqCerts}, [&]() -> auto& { return e.snp_req_certs(); });

  bool reset = !e.interrupted() && e.reason() == ExitReason::S390Reset;
  try {
    std::uint64_t f = e.s390_reset_flags();
    FUZZ_CHECK(reset);
    touch_obj(f);
  } catch (const kvm::WrongExitError&) {
    FUZZ_CHECK(!reset);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kvm_fuzz::Reader in(data, size);
  auto status_bits = in.get<std::uint8_t>();
  auto size_sel = in.get<std::uint16_t>();
  std::size_t mapped = kMinMapping + size_sel % (kMaxMapping - kMinMapping + 1);

  // Exactly `mapped` bytes: ASan's redzone starts right after the last one.
  std::unique_ptr<std::uint8_t[]> page(new std::uint8_t[mapped]());
  std::size_t body = size > 3 ? size - 3 : 0;
  if (body > mapped) body = mapped;
  if (body) std::memcpy(page.get(), data + 3, body);

  bool interrupted = status_bits & 1;
  int err = interrupted ? ((status_bits & 2) ? EAGAIN : EINTR) : 0;
  kvm::RunStatus status = !interrupted             ? kvm::RunStatus::Exited
                          : (status_bits & 4) != 0 ? kvm::RunStatus::TimedOut
                                                   : kvm::RunStatus::Interrupted;
  kvm::Exit e(*reinterpret_cast<abi::kvm_run*>(page.get()), mapped, status, err);
  if (e.interrupted() != interrupted || e.timed_out() != (status == kvm::RunStatus::TimedOut))
    kvm_fuzz::fail("Exit::interrupted()/timed_out() disagree with the run status");
  try {
    check_all(e, page.get(), mapped);
  } catch (const kvm::Error&) {
    // Documented error type of the runtime; acceptable from any accessor.
  }
  return 0;
}

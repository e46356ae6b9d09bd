#include "snapshot.h"

#include <cstring>
#include <stdexcept>

namespace snapshot {

namespace {

constexpr char kMagic[8] = {'K', 'V', 'M', 'S', 'N', 'A', 'P', '1'};

struct SectionHeader {
  std::uint32_t tag;
  std::uint32_t reserved;
  std::uint64_t size;
};

// MSRs to try when the host cannot list them (KVM_GET_MSR_INDEX_LIST fails): the usual
// syscall/sysenter set, the TSC, PAT and the kvmclock MSRs.
constexpr std::uint32_t kFallbackMsrs[] = {
    0x10,        // IA32_TSC
    0x174,       // IA32_SYSENTER_CS
    0x175,       // IA32_SYSENTER_ESP
    0x176,       // IA32_SYSENTER_EIP
    0x277,       // IA32_PAT
    0xc0000081,  // STAR
    0xc0000082,  // LSTAR
    0xc0000083,  // CSTAR
    0xc0000084,  // SFMASK
    0xc0000102,  // KERNEL_GS_BASE
    0x4b564d00,  // MSR_KVM_WALL_CLOCK_NEW
    0x4b564d01,  // MSR_KVM_SYSTEM_TIME_NEW
};

// Runs `f`; on kvm::Error records "what: error" as skipped and returns false.
template <class F>
bool attempt(Report& report, const std::string& what, F f) {
  try {
    f();
    report.done.push_back(what);
    return true;
  } catch (const kvm::Error& e) {
    report.skipped.push_back(what + ": " + e.what());
    return false;
  }
}

template <class T>
std::span<const std::uint8_t> bytes_of(const T& v) {
  return {reinterpret_cast<const std::uint8_t*>(&v), sizeof v};
}

// Reads the MSRs of `table` one ioctl at a time; KVM_GET_MSRS stops at the first MSR it
// refuses, so drop that one and go on. Returns the readable entries; names the dropped ones.
kvm::Msrs read_msrs(const kvm::Vcpu& vcpu, kvm::Msrs table, std::vector<std::uint32_t>& refused) {
  kvm::Msrs result(table.size());
  std::size_t next = 0;
  while (next < table.size()) {
    kvm::Msrs rest;
    for (std::size_t i = next; i < table.size(); ++i) rest.push_back(table[i]);
    const int n = vcpu.get_msrs(rest);
    for (int i = 0; i < n; ++i) result.push_back(rest[static_cast<std::size_t>(i)]);
    next += static_cast<std::size_t>(n);
    if (next < table.size()) refused.push_back(table[next++].index);  // skip the refused one
  }
  return result;
}

void save_vcpu_rest(const kvm::Vcpu& vcpu, Writer& out, Report& report);

}  // namespace

Writer::Writer() { buf_.assign(std::begin(kMagic), std::end(kMagic)); }

void Writer::add(Tag tag, std::span<const std::uint8_t> bytes) { add(tag, {}, bytes); }

void Writer::add(Tag tag, std::span<const std::uint8_t> head, std::span<const std::uint8_t> bytes) {
  SectionHeader h{static_cast<std::uint32_t>(tag), 0, head.size() + bytes.size()};
  const auto* p = reinterpret_cast<const std::uint8_t*>(&h);
  buf_.insert(buf_.end(), p, p + sizeof h);
  buf_.insert(buf_.end(), head.begin(), head.end());
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Reader::Reader(std::span<const std::uint8_t> buffer) {
  if (buffer.size() < sizeof kMagic || std::memcmp(buffer.data(), kMagic, sizeof kMagic) != 0) {
    throw std::runtime_error("snapshot: bad magic");
  }
  std::size_t at = sizeof kMagic;
  while (at < buffer.size()) {
    SectionHeader h;
    if (buffer.size() - at < sizeof h)
      throw std::runtime_error("snapshot: truncated section header");
    std::memcpy(&h, buffer.data() + at, sizeof h);
    at += sizeof h;
    if (h.size > buffer.size() - at)
      throw std::runtime_error("snapshot: section runs past the end");
    sections_.emplace(static_cast<Tag>(h.tag), buffer.subspan(at, h.size));
    at += h.size;
  }
}

std::vector<std::span<const std::uint8_t>> Reader::all(Tag tag) const {
  std::vector<std::span<const std::uint8_t>> out;
  auto [b, e] = sections_.equal_range(tag);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

std::span<const std::uint8_t> Reader::one(Tag tag) const {
  auto it = sections_.find(tag);
  return it == sections_.end() ? std::span<const std::uint8_t>{} : it->second;
}

void Reader::check_size(Tag tag, std::size_t got, std::size_t want) {
  if (got != want) {
    throw std::runtime_error("snapshot: section " + std::to_string(static_cast<unsigned>(tag)) +
                             " has " + std::to_string(got) + " bytes, expected " +
                             std::to_string(want));
  }
}

void complete_pending_io(kvm::Vcpu& vcpu) {
  vcpu.kicker().kick();  // sets kvm_run.immediate_exit: KVM_RUN completes the IO and returns
  kvm::Exit e = vcpu.run();
  if (!e.interrupted())
    throw std::runtime_error("complete_pending_io: the vCPU ran on to " + e.name());
}

// ---- save -------------------------------------------------------------------------------

void save_vm(const kvm::Vm& vm, const kvm::GuestMemory& memory, Writer& out, Report& report) {
  for (const kvm::GuestMemory::Region& r : memory.regions()) {
    out.add(Tag::Memory, bytes_of(r.guest_phys_addr), r.host);
  }
  report.done.push_back("memory: " + std::to_string(memory.regions().size()) + " region(s)");
  attempt(report, "irqchip (PIC master, PIC slave, IOAPIC)", [&] {
    for (std::uint32_t chip = 0; chip < 3; ++chip) out.add_obj(Tag::Irqchip, vm.irqchip(chip));
  });
  attempt(report, "kvmclock", [&] { out.add_obj(Tag::Clock, vm.clock()); });
}

void save_vcpu(const kvm::System& sys, const kvm::Vm& vm, const kvm::Vcpu& vcpu, Writer& out,
               Report& report, SaveOptions options) {
  out.add_obj(Tag::Regs, vcpu.regs());
  out.add_obj(Tag::Sregs, vcpu.sregs());
  report.done.push_back("regs, sregs");
  attempt(report, "fpu", [&] { out.add_obj(Tag::Fpu, vcpu.fpu()); });
  // The XSAVE area: KVM_CAP_XSAVE2 on the VM gives its full size (> 4 KiB with AVX-512/AMX).
  const int xsave2_size = vm.check_extension(kvm::abi::Cap::Xsave2);
  if (xsave2_size > 0) {
    attempt(report, "xsave (" + std::to_string(xsave2_size) + " bytes)", [&] {
      std::vector<std::uint32_t> area = vcpu.xsave2(static_cast<std::size_t>(xsave2_size));
      out.add(Tag::Xsave, {reinterpret_cast<const std::uint8_t*>(area.data()), area.size() * 4});
    });
  } else if (vm.check_extension(kvm::abi::Cap::Xsave) > 0) {
    attempt(report, "xsave", [&] { out.add_obj(Tag::Xsave, vcpu.xsave()); });
  }
  if (vm.check_extension(kvm::abi::Cap::Xcrs) > 0) {
    attempt(report, "xcrs", [&] { out.add_obj(Tag::Xcrs, vcpu.xcrs()); });
  }

  // MSRs: the list KVM saves for migration, or a fallback list if the host will not say.
  if (!options.msrs) {
    report.skipped.push_back("msrs: left out by the caller; MSR state is NOT saved");
    return save_vcpu_rest(vcpu, out, report);
  }
  kvm::Msrs table;
  std::string source = "KVM_GET_MSR_INDEX_LIST";
  try {
    for (std::uint32_t index : sys.msr_index_list())
      table.push_back(kvm::abi::kvm_msr_entry{index, 0, 0});
  } catch (const kvm::Error& e) {
    report.skipped.push_back(std::string("MSR index list: ") + e.what() + "; trying a fixed list");
    source = "fixed list";
    for (std::uint32_t index : kFallbackMsrs) table.push_back(kvm::abi::kvm_msr_entry{index, 0, 0});
  }
  try {
    std::vector<std::uint32_t> refused;
    kvm::Msrs msrs = read_msrs(vcpu, table, refused);
    out.add(Tag::Msrs, {reinterpret_cast<const std::uint8_t*>(msrs.entries().data()),
                        msrs.size() * sizeof(kvm::abi::kvm_msr_entry)});
    report.done.push_back("msrs: " + std::to_string(msrs.size()) + " of " +
                          std::to_string(table.size()) + " (" + source + ")");
    if (!refused.empty())
      report.skipped.push_back("msrs: " + std::to_string(refused.size()) +
                               " refused by KVM_GET_MSRS");
  } catch (const kvm::Error& e) {
    report.skipped.push_back(std::string("msrs: ") + e.what() + "; MSR state is NOT saved");
  }
  save_vcpu_rest(vcpu, out, report);
}

namespace {
// The state after the MSRs: MP state, local APIC, events, debug registers.
void save_vcpu_rest(const kvm::Vcpu& vcpu, Writer& out, Report& report) {
  attempt(report, "mp_state", [&] {
    kvm::abi::kvm_mp_state s{kvm::abi::to_underlying(vcpu.mp_state())};
    out.add_obj(Tag::MpState, s);
  });
  attempt(report, "lapic", [&] { out.add_obj(Tag::Lapic, vcpu.lapic()); });
  attempt(report, "vcpu_events", [&] { out.add_obj(Tag::VcpuEvents, vcpu.vcpu_events()); });
  attempt(report, "debugregs", [&] { out.add_obj(Tag::Debugregs, vcpu.debugregs()); });
}
}  // namespace

// ---- restore ----------------------------------------------------------------------------

void restore_vm(const Reader& in, kvm::Vm& vm, kvm::GuestMemory& memory, Report& report) {
  for (std::span<const std::uint8_t> s : in.all(Tag::Memory)) {
    std::uint64_t gpa;
    if (s.size() < sizeof gpa) throw std::runtime_error("snapshot: short memory section");
    std::memcpy(&gpa, s.data(), sizeof gpa);
    std::span<const std::uint8_t> bytes = s.subspan(sizeof gpa);
    std::span<std::uint8_t> host = memory.add(vm, gpa, bytes.size());
    std::memcpy(host.data(), bytes.data(), bytes.size());
  }
  report.done.push_back("memory: " + std::to_string(in.all(Tag::Memory).size()) + " region(s)");
  std::vector<std::span<const std::uint8_t>> chips = in.all(Tag::Irqchip);
  if (!chips.empty()) {
    attempt(report, "irqchip", [&] {
      for (std::span<const std::uint8_t> c : chips) {
        kvm::abi::kvm_irqchip chip;
        if (c.size() != sizeof chip) throw std::runtime_error("snapshot: bad irqchip section");
        std::memcpy(&chip, c.data(), sizeof chip);
        vm.set_irqchip(chip);
      }
    });
  }
  kvm::abi::kvm_clock_data clock;
  if (in.get(Tag::Clock, clock)) {
    attempt(report, "kvmclock", [&] {
      clock.flags = 0;  // restore the clock value only, not the host-time stamps
      vm.set_clock(clock);
    });
  }
}

void restore_vcpu(const Reader& in, kvm::Vcpu& vcpu, Report& report) {
  kvm::abi::kvm_regs regs;
  kvm::abi::kvm_sregs sregs;
  if (!in.get(Tag::Regs, regs) || !in.get(Tag::Sregs, sregs)) {
    throw std::runtime_error("snapshot: no registers");
  }
  vcpu.set_regs(regs);
  // The XSAVE area first, then the legacy FPU/SSE view: an XSAVE area only carries the
  // components enabled in the guest's XCR0 (just x87 for a guest without CPUID), so x87/SSE
  // registers set through KVM_SET_FPU may be missing from it.
  std::span<const std::uint8_t> xsave = in.one(Tag::Xsave);
  if (!xsave.empty()) {
    attempt(report, "xsave", [&] {
      std::vector<std::uint32_t> area((xsave.size() + 3) / 4);
      std::memcpy(area.data(), xsave.data(), xsave.size());
      vcpu.set_xsave2(area);  // KVM_SET_XSAVE takes the full area, whatever its size
    });
  }
  kvm::abi::kvm_fpu fpu;
  if (in.get(Tag::Fpu, fpu)) attempt(report, "fpu", [&] { vcpu.set_fpu(fpu); });
  kvm::abi::kvm_xcrs xcrs;
  if (in.get(Tag::Xcrs, xcrs)) attempt(report, "xcrs", [&] { vcpu.set_xcrs(xcrs); });
  vcpu.set_sregs(sregs);
  report.done.push_back("regs, sregs");

  std::span<const std::uint8_t> m = in.one(Tag::Msrs);
  if (!m.empty()) {
    kvm::Msrs msrs(m.size() / sizeof(kvm::abi::kvm_msr_entry));
    for (std::size_t i = 0; i + sizeof(kvm::abi::kvm_msr_entry) <= m.size();
         i += sizeof(kvm::abi::kvm_msr_entry)) {
      kvm::abi::kvm_msr_entry e;
      std::memcpy(&e, m.data() + i, sizeof e);
      msrs.push_back(e);
    }
    attempt(report, "msrs", [&] {
      const int n = vcpu.set_msrs(msrs);
      if (n != static_cast<int>(msrs.size())) {
        throw kvm::Error("KVM_SET_MSRS", EINVAL,
                         "took " + std::to_string(n) + " of " + std::to_string(msrs.size()) +
                             ", stopped at MSR " +
                             std::to_string(msrs[static_cast<std::size_t>(n)].index));
      }
    });
  } else {
    report.skipped.push_back("msrs: none in the snapshot");
  }

  kvm::abi::kvm_mp_state mp;
  if (in.get(Tag::MpState, mp)) {
    attempt(report, "mp_state",
            [&] { vcpu.set_mp_state(static_cast<kvm::abi::MpState>(mp.mp_state)); });
  }
  kvm::abi::kvm_lapic_state lapic;
  if (in.get(Tag::Lapic, lapic)) attempt(report, "lapic", [&] { vcpu.set_lapic(lapic); });
  kvm::abi::kvm_vcpu_events events;
  if (in.get(Tag::VcpuEvents, events))
    attempt(report, "vcpu_events", [&] { vcpu.set_vcpu_events(events); });
  kvm::abi::kvm_debugregs dregs;
  if (in.get(Tag::Debugregs, dregs))
    attempt(report, "debugregs", [&] { vcpu.set_debugregs(dregs); });
}

}  // namespace snapshot

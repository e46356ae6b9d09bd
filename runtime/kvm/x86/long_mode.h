// Building blocks for starting an x86-64 guest from nothing: control-register and descriptor
// constants, a default guest-physical layout, identity-mapped page tables, a GDT + TSS, and
// templates that fill KVM register structs for 64-bit long mode or flat real mode.
//
// The register templates only use the C field names of struct kvm_sregs / kvm_segment /
// kvm_dtable / kvm_regs, so they work with <linux/kvm.h> and with generated bindings alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

namespace kvm::x86 {

// ---- CR0 bits ----
inline constexpr std::uint64_t kCr0Pe = 1ULL << 0;   // Protection Enable (protected mode)
inline constexpr std::uint64_t kCr0Mp = 1ULL << 1;   // Monitor Coprocessor (WAIT honours TS)
inline constexpr std::uint64_t kCr0Em = 1ULL << 2;   // x87 Emulation (FPU insns raise #NM)
inline constexpr std::uint64_t kCr0Ts = 1ULL << 3;   // Task Switched (lazy FPU)
inline constexpr std::uint64_t kCr0Et = 1ULL << 4;   // Extension Type (always 1 on modern CPUs)
inline constexpr std::uint64_t kCr0Ne = 1ULL << 5;   // Numeric Error (native x87 error reporting)
inline constexpr std::uint64_t kCr0Wp = 1ULL << 16;  // Write Protect (CPL0 honours read-only pages)
inline constexpr std::uint64_t kCr0Am = 1ULL << 18;  // Alignment Mask (enables #AC at CPL3)
inline constexpr std::uint64_t kCr0Nw = 1ULL << 29;  // Not Write-through
inline constexpr std::uint64_t kCr0Cd = 1ULL << 30;  // Cache Disable
inline constexpr std::uint64_t kCr0Pg = 1ULL << 31;  // Paging

// ---- CR4 bits ----
inline constexpr std::uint64_t kCr4Vme = 1ULL << 0;          // Virtual-8086 Mode Extensions
inline constexpr std::uint64_t kCr4Pvi = 1ULL << 1;          // Protected-mode Virtual Interrupts
inline constexpr std::uint64_t kCr4Tsd = 1ULL << 2;          // Time Stamp Disable (rdtsc CPL0 only)
inline constexpr std::uint64_t kCr4De = 1ULL << 3;           // Debugging Extensions
inline constexpr std::uint64_t kCr4Pse = 1ULL << 4;          // Page Size Extensions (32-bit paging)
inline constexpr std::uint64_t kCr4Pae = 1ULL << 5;          // Physical Address Extension
inline constexpr std::uint64_t kCr4Mce = 1ULL << 6;          // Machine Check Enable
inline constexpr std::uint64_t kCr4Pge = 1ULL << 7;          // Page Global Enable
inline constexpr std::uint64_t kCr4Pce = 1ULL << 8;          // Performance Counter Enable (rdpmc)
inline constexpr std::uint64_t kCr4Osfxsr = 1ULL << 9;       // OS supports FXSAVE/FXRSTOR (SSE)
inline constexpr std::uint64_t kCr4Osxmmexcpt = 1ULL << 10;  // OS handles SIMD FP exceptions
inline constexpr std::uint64_t kCr4Umip = 1ULL << 11;        // User-Mode Instruction Prevention
inline constexpr std::uint64_t kCr4La57 = 1ULL << 12;        // 5-level paging
inline constexpr std::uint64_t kCr4Vmxe = 1ULL << 13;        // VMX Enable
inline constexpr std::uint64_t kCr4Smxe = 1ULL << 14;        // SMX Enable
inline constexpr std::uint64_t kCr4Fsgsbase = 1ULL << 16;    // rd/wr{fs,gs}base instructions
inline constexpr std::uint64_t kCr4Pcide = 1ULL << 17;       // Process-Context Identifiers
inline constexpr std::uint64_t kCr4Osxsave = 1ULL << 18;     // XSAVE and XCR0 enabled
inline constexpr std::uint64_t kCr4Smep = 1ULL << 20;        // Supervisor Mode Execution Prevention
inline constexpr std::uint64_t kCr4Smap = 1ULL << 21;        // Supervisor Mode Access Prevention

// ---- EFER (MSR 0xC0000080) bits ----
inline constexpr std::uint32_t kMsrEfer = 0xc0000080;  // EFER MSR index
inline constexpr std::uint64_t kEferSce = 1ULL << 0;   // System Call Extensions (syscall)
inline constexpr std::uint64_t kEferLme = 1ULL << 8;   // Long Mode Enable
inline constexpr std::uint64_t kEferLma = 1ULL << 10;  // Long Mode Active (read-only status)
inline constexpr std::uint64_t kEferNxe = 1ULL << 11;  // No-Execute Enable (PTE bit 63)

// ---- Page-table entry bits (all levels; kPtePs only in PDPTE/PDE) ----
inline constexpr std::uint64_t kPtePresent = 1ULL << 0;       // P: entry valid
inline constexpr std::uint64_t kPteWritable = 1ULL << 1;      // R/W: writes allowed
inline constexpr std::uint64_t kPteUser = 1ULL << 2;          // U/S: CPL3 may access
inline constexpr std::uint64_t kPteWriteThrough = 1ULL << 3;  // PWT
inline constexpr std::uint64_t kPteCacheDisable = 1ULL << 4;  // PCD
inline constexpr std::uint64_t kPteAccessed = 1ULL << 5;      // A: set by the CPU
inline constexpr std::uint64_t kPteDirty = 1ULL << 6;         // D: set by the CPU (leaf)
inline constexpr std::uint64_t kPtePs = 1ULL << 7;            // PS: 2 MiB (PDE) / 1 GiB (PDPTE)
inline constexpr std::uint64_t kPteGlobal = 1ULL << 8;        // G: global (needs CR4.PGE)
inline constexpr std::uint64_t kPteNx = 1ULL << 63;           // XD: no execute (needs EFER.NXE)
inline constexpr std::uint64_t kPageSize = 0x1000;            // 4 KiB
inline constexpr std::uint64_t kLargePageSize = 0x200000;     // 2 MiB
inline constexpr std::uint64_t kGiB = 0x40000000;             // 1 GiB, the span of one PD

// ---- GDT descriptor bits (a legacy 8-byte code/data descriptor as a uint64) ----
inline constexpr std::uint64_t kDescAccessed = 1ULL << 40;  // A: segment accessed
inline constexpr std::uint64_t kDescRw = 1ULL << 41;        // data: writable; code: readable
inline constexpr std::uint64_t kDescDc = 1ULL << 42;        // data: expand-down; code: conforming
inline constexpr std::uint64_t kDescExec = 1ULL << 43;      // code segment
inline constexpr std::uint64_t kDescS = 1ULL << 44;         // code/data (clear for system: TSS/LDT)
inline constexpr std::uint64_t kDescDplShift = 45;          // DPL in bits 45-46
inline constexpr std::uint64_t kDescPresent = 1ULL << 47;   // P: present
inline constexpr std::uint64_t kDescAvl = 1ULL << 52;       // available to software
inline constexpr std::uint64_t kDescL = 1ULL << 53;         // 64-bit code segment
inline constexpr std::uint64_t kDescDb = 1ULL << 54;        // default operand size 32 (D/B)
inline constexpr std::uint64_t kDescG = 1ULL << 55;         // granularity: limit in 4 KiB units

// ---- kvm_segment::type values (the 4-bit descriptor type field) ----
inline constexpr std::uint8_t kSegTypeDataRwA = 0x3;    // data, read/write, accessed
inline constexpr std::uint8_t kSegTypeCodeXrA = 0xb;    // code, execute/read, accessed
inline constexpr std::uint8_t kSegTypeLdt = 0x2;        // system: LDT
inline constexpr std::uint8_t kSegTypeTss16Busy = 0x3;  // system: busy 16-bit TSS
inline constexpr std::uint8_t kSegTypeTssAvail = 0x9;   // system: available 32/64-bit TSS
inline constexpr std::uint8_t kSegTypeTssBusy = 0xb;    // system: busy 32/64-bit TSS

// ---- GDT written by write_gdt() ----
// Index 0 null, 1 kernel code64, 2 kernel data, 3 user data, 4 user code64, 5-6 TSS (16-byte
// system descriptor). The order of 2/3/4 suits SYSCALL/SYSRET with STAR[47:32]=0x08 and
// STAR[63:48]=0x10 (sysret: SS=0x10+8 -> user data, CS=0x10+16 -> user code64).
inline constexpr std::uint16_t kSelNull = 0x00;
inline constexpr std::uint16_t kSelKernelCode = 0x08;  // DPL0, L=1
inline constexpr std::uint16_t kSelKernelData = 0x10;  // DPL0, flat 4 GiB RW
inline constexpr std::uint16_t kSelUserData = 0x1b;    // index 3, RPL3, DPL3
inline constexpr std::uint16_t kSelUserCode = 0x23;    // index 4, RPL3, DPL3, L=1
inline constexpr std::uint16_t kSelTss = 0x28;         // index 5 (+6), 64-bit TSS
inline constexpr std::size_t kGdtEntries = 7;
inline constexpr std::size_t kGdtBytes = kGdtEntries * 8;
inline constexpr std::size_t kTssBytes = 104;  // 64-bit TSS without I/O permission bitmap
// I/O permission bitmap (one bit per port, 0 = allowed) plus the required 0xff terminator byte.
inline constexpr std::size_t kIoBitmapBytes = 65536 / 8 + 1;
inline constexpr std::size_t kIdtBytes = 256 * 16;

// Where the long-mode structures live in guest-physical memory. The defaults all fit in the
// first 640 KiB, so one memory slot of >= 1 MiB at guest-physical 0 holds everything:
//   0x1000  GDT (56 bytes)             0x2000  IDT (optional, 4 KiB)
//   0x3000  TSS (104 bytes) + I/O bitmap (8193 bytes, up to 0x5068)
//   0x6000  PML4, 0x7000 PDPT, 0x8000.. one PD per GiB mapped (0x8000-0xbfff for 4 GiB)
//   0x10000 code (entry point)         0x80000 initial stack top (grows down)
//   0x90000 interrupt stack top (TSS.rsp0, used on CPL3 -> CPL0 transitions)
struct GuestLayout {
  std::uint64_t gdt = 0x1000;          // GDT base (kGdtBytes)
  std::optional<std::uint64_t> idt;    // IDT base (kIdtBytes); none => IDTR {0, 0}
  std::uint64_t tss = 0x3000;          // 64-bit TSS base (tss_bytes(*this))
  std::uint64_t page_tables = 0x6000;  // PML4; PDPT and PDs follow, 4 KiB each
  // Identity-mapped bytes from 0 (a 2 MiB multiple). The default, 4 GiB, covers the 32-bit
  // MMIO hole below 4 GiB (PCI devices, the IOAPIC, the local APIC), where VMMs put devices:
  // a guest access to an address outside the map is a page fault, which without an IDT ends
  // in a triple fault (KVM_EXIT_SHUTDOWN), not in an MMIO exit.
  std::uint64_t mapped_size = 4 * kGiB;
  std::uint64_t code = 0x10000;                 // entry point (rip)
  std::uint64_t stack_top = 0x80000;            // initial rsp
  std::uint64_t interrupt_stack_top = 0x90000;  // TSS.rsp0
  bool user_mode = false;  // start at CPL3 (user segments, U/S=1 pages) instead of CPL0
  // Append an all-ports-allowed I/O permission bitmap to the TSS, so CPL3 code may use in/out
  // (RFLAGS.IOPL=3 does not work on PVM: the guest runs with IOPL 0 whatever KVM_SET_REGS says).
  bool io_bitmap = true;
};

// Size of the TSS including the optional I/O bitmap; the TR limit is this minus one.
constexpr std::uint64_t tss_bytes(const GuestLayout& layout) {
  return kTssBytes + (layout.io_bitmap ? kIoBitmapBytes : 0);
}

// Bytes of page tables write_identity_page_tables() needs to map `size` bytes.
std::uint64_t page_table_bytes(std::uint64_t size);

// Checks that the GDT, IDT, TSS and page tables of `layout` do not overlap each other or the
// entry point, and that all of them plus code and stack lie inside the identity-mapped range.
// Throws std::invalid_argument naming the offending regions.
void check_layout(const GuestLayout& layout);

// Writes 4-level identity-mapped page tables (2 MiB pages) covering guest-physical
// [0, size) into `mem`, which holds guest-physical [mem_base, mem_base + mem.size()):
// PML4 at pml4_addr, PDPT at +4 KiB, then one PD per GiB. Entries are present + writable,
// and user-accessible (U/S) if `user` is set. size must be a non-zero multiple of 2 MiB and
// at most 512 GiB; pml4_addr must be 4 KiB aligned (std::invalid_argument otherwise). Throws
// std::length_error if the tables do not fit in `mem`. Returns the bytes written.
std::uint64_t write_identity_page_tables(std::span<std::uint8_t> mem, std::uint64_t mem_base,
                                         std::uint64_t pml4_addr, std::uint64_t size,
                                         bool user = false);

// Packs a legacy 8-byte code/data segment descriptor: base, 20-bit limit, and the access /
// flag bits above (kDesc*).
std::uint64_t make_segment_descriptor(std::uint32_t base, std::uint32_t limit, std::uint64_t flags);

// Writes the 7-entry GDT (see kSel*) at layout.gdt and a 64-bit TSS at layout.tss (rsp0 =
// layout.interrupt_stack_top; with layout.io_bitmap an all-zero = all-ports-allowed I/O bitmap
// right after it, else none). Throws std::length_error if either does not fit in `mem`
// (guest-physical [mem_base, mem_base + mem.size())).
void write_gdt(std::span<std::uint8_t> mem, std::uint64_t mem_base, const GuestLayout& layout);

// Writes one 64-bit interrupt gate (trap gate if `trap`) for `vector` into the IDT at
// idt_addr: handler address, code selector, IST index (0 = none), DPL (3 lets `int n` at CPL3).
void write_idt_gate(std::span<std::uint8_t> mem, std::uint64_t mem_base, std::uint64_t idt_addr,
                    std::uint8_t vector, std::uint64_t handler,
                    std::uint16_t selector = kSelKernelCode, std::uint8_t ist = 0,
                    std::uint8_t dpl = 0, bool trap = false);

// Writes everything setup_long_mode_sregs() expects to find in memory: page tables (U/S per
// layout.user_mode), GDT and TSS; zeroes the IDT if layout.idt is set. Runs check_layout()
// first, then bounds-checks every write against `mem`.
void write_long_mode_tables(std::span<std::uint8_t> mem, std::uint64_t mem_base,
                            const GuestLayout& layout);

// Copies `code` to guest-physical `addr` in `mem`; throws std::length_error if it does not fit.
void write_bytes(std::span<std::uint8_t> mem, std::uint64_t mem_base, std::uint64_t addr,
                 std::span<const std::uint8_t> code, const char* what = "code");

// Fills one kvm_segment-shaped struct.
template <class Segment>
void set_segment(Segment& seg, std::uint64_t base, std::uint32_t limit, std::uint16_t selector,
                 std::uint8_t type, bool code_or_data, std::uint8_t dpl, bool db, bool l, bool g) {
  seg.base = base;
  seg.limit = limit;
  seg.selector = selector;
  seg.type = type;
  seg.present = 1;
  seg.dpl = dpl;
  seg.db = db ? 1 : 0;
  seg.s = code_or_data ? 1 : 0;
  seg.l = l ? 1 : 0;
  seg.g = g ? 1 : 0;
  seg.avl = 0;
  seg.unusable = 0;
}

// Fills `sregs` for 64-bit long mode matching write_long_mode_tables(layout): flat 64-bit
// CS (kernel or user per layout.user_mode), flat data segments, busy 64-bit TSS in TR,
// unusable LDT, GDTR/IDTR, CR0 = PE|MP|ET|NE|WP|PG, CR3 = layout.page_tables, CR4 = PAE,
// EFER = LME|LMA. Other fields (cr2, cr8, apic_base, interrupt_bitmap) are left untouched,
// so call it on the result of KVM_GET_SREGS. OR extra CR4/EFER bits (e.g. kCr4Osfxsr,
// kEferNxe) in afterwards if the guest's CPUID allows them.
template <class Sregs>
void setup_long_mode_sregs(Sregs& s, const GuestLayout& layout) {
  const std::uint8_t dpl = layout.user_mode ? 3 : 0;
  const std::uint16_t cs_sel = layout.user_mode ? kSelUserCode : kSelKernelCode;
  const std::uint16_t ds_sel = layout.user_mode ? kSelUserData : kSelKernelData;
  set_segment(s.cs, 0, 0xffffffff, cs_sel, kSegTypeCodeXrA, true, dpl, false, true, true);
  set_segment(s.ds, 0, 0xffffffff, ds_sel, kSegTypeDataRwA, true, dpl, true, false, true);
  s.es = s.ds;
  s.fs = s.ds;
  s.gs = s.ds;
  s.ss = s.ds;
  set_segment(s.tr, layout.tss, static_cast<std::uint32_t>(tss_bytes(layout) - 1), kSelTss,
              kSegTypeTssBusy, false, 0, false, false, false);
  set_segment(s.ldt, 0, 0, 0, kSegTypeLdt, false, 0, false, false, false);
  s.ldt.present = 0;
  s.ldt.unusable = 1;
  s.gdt.base = layout.gdt;
  s.gdt.limit = kGdtBytes - 1;
  s.idt.base = layout.idt.value_or(0);
  s.idt.limit = layout.idt ? kIdtBytes - 1 : 0;
  s.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
  s.cr3 = layout.page_tables;
  s.cr4 = kCr4Pae;
  s.efer = kEferLme | kEferLma;
}

// Fills `sregs` for flat real mode: CS selector cs_base >> 4 with base cs_base (cs_base must
// be < 1 MiB and 16-byte aligned for a consistent selector), DS/ES/FS/GS/SS selector 0 base 0,
// all limits 0xffff, IVT at 0 (IDTR {0, 0x3ff}), CR0 = ET, CR4 = 0, EFER = 0, TR/LDT in their
// reset state. Start with setup_regs(regs, entry - cs_base, sp).
template <class Sregs>
void setup_real_mode_sregs(Sregs& s, std::uint64_t cs_base = 0) {
  set_segment(s.cs, cs_base, 0xffff, static_cast<std::uint16_t>(cs_base >> 4), kSegTypeCodeXrA,
              true, 0, false, false, false);
  set_segment(s.ds, 0, 0xffff, 0, kSegTypeDataRwA, true, 0, false, false, false);
  s.es = s.ds;
  s.fs = s.ds;
  s.gs = s.ds;
  s.ss = s.ds;
  set_segment(s.tr, 0, 0xffff, 0, kSegTypeTssBusy, false, 0, false, false, false);
  set_segment(s.ldt, 0, 0xffff, 0, kSegTypeLdt, false, 0, false, false, false);
  s.gdt.base = 0;
  s.gdt.limit = 0xffff;
  s.idt.base = 0;
  s.idt.limit = 0x3ff;
  s.cr0 = kCr0Et;
  s.cr3 = 0;
  s.cr4 = 0;
  s.efer = 0;
}

// Zeroes `regs` and sets rip, rsp and rflags = 0x2 (the always-one bit 1; interrupts off).
template <class Regs>
void setup_regs(Regs& r, std::uint64_t rip, std::uint64_t rsp) {
  r = Regs{};
  r.rip = rip;
  r.rsp = rsp;
  r.rflags = 0x2;
}

// Points a vCPU at layout.code in the long mode that write_long_mode_tables(layout) prepared:
// long-mode special registers over the vCPU's current ones, general registers from
// setup_regs(layout.code, rsp). `vcpu` is anything with sregs(), set_sregs(), regs() and
// set_regs(), such as kvm::Vcpu (this header does not depend on the runtime).
template <class Vcpu>
void start_in_long_mode(Vcpu& vcpu, const GuestLayout& layout) {
  auto sregs = vcpu.sregs();
  setup_long_mode_sregs(sregs, layout);
  vcpu.set_sregs(sregs);
  std::remove_cvref_t<decltype(vcpu.regs())> regs{};
  setup_regs(regs, layout.code, layout.stack_top);
  vcpu.set_regs(regs);
}

}  // namespace kvm::x86

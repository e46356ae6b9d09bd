#include "kvm/x86/long_mode.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "kvm/format.h"

namespace kvm::x86 {
namespace {

using kvm::detail::hex;

// Returns the host pointer for guest-physical [addr, addr + len) or throws std::length_error.
std::uint8_t* slice(std::span<std::uint8_t> mem, std::uint64_t mem_base, std::uint64_t addr,
                    std::uint64_t len, const char* what) {
  const std::uint64_t end = mem_base + mem.size();
  if (addr < mem_base || addr > end || len > end - addr) {
    throw std::length_error(std::string("kvm::x86: ") + what + " at " + hex(addr) + " (" +
                            std::to_string(len) + " bytes) is outside guest memory [" +
                            hex(mem_base) + ", " + hex(end) + ")");
  }
  return mem.data() + (addr - mem_base);
}

void put64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace

std::uint64_t page_table_bytes(std::uint64_t size) {
  return (2 + (size + kGiB - 1) / kGiB) * kPageSize;
}

void check_layout(const GuestLayout& layout) {
  struct Region {
    const char* name;
    std::uint64_t begin, size;
  };
  Region regions[4] = {
      {"GDT", layout.gdt, kGdtBytes},
      {"TSS", layout.tss, tss_bytes(layout)},
      {"page tables", layout.page_tables, page_table_bytes(layout.mapped_size)},
      {"IDT", layout.idt.value_or(0), layout.idt ? kIdtBytes : 0},
  };
  auto fail = [](const std::string& msg) {
    throw std::invalid_argument("kvm::x86: guest layout: " + msg);
  };
  auto describe = [](const Region& r) {
    return std::string(r.name) + " [" + hex(r.begin) + ", " + hex(r.begin + r.size) + ")";
  };
  for (const Region& a : regions) {
    if (a.size == 0) continue;
    if (a.begin + a.size > layout.mapped_size)
      fail(describe(a) + " is outside the identity map [0, " + hex(layout.mapped_size) + ")");
    if (layout.code >= a.begin && layout.code < a.begin + a.size)
      fail("entry point " + hex(layout.code) + " lies inside " + describe(a));
    for (const Region& b : regions) {
      if (&a == &b || b.size == 0) continue;
      if (a.begin < b.begin + b.size && b.begin < a.begin + a.size)
        fail(describe(a) + " overlaps " + describe(b));
    }
  }
  if (layout.code >= layout.mapped_size)
    fail("entry point " + hex(layout.code) + " is outside the identity map");
  if (layout.stack_top > layout.mapped_size || layout.interrupt_stack_top > layout.mapped_size)
    fail("stack top is outside the identity map");
}

std::uint64_t write_identity_page_tables(std::span<std::uint8_t> mem, std::uint64_t mem_base,
                                         std::uint64_t pml4_addr, std::uint64_t size, bool user) {
  if (size == 0 || size % kLargePageSize != 0)
    throw std::invalid_argument("kvm::x86: identity map size " + hex(size) +
                                " is not a non-zero multiple of 2 MiB");
  if (size > 512 * kGiB)
    throw std::invalid_argument("kvm::x86: identity map size " + hex(size) +
                                " exceeds 512 GiB (one PDPT)");
  if (pml4_addr % kPageSize != 0)
    throw std::invalid_argument("kvm::x86: page-table base " + hex(pml4_addr) +
                                " is not 4 KiB aligned");
  const std::uint64_t bytes = page_table_bytes(size);
  std::uint8_t* base = slice(mem, mem_base, pml4_addr, bytes, "page tables");
  std::memset(base, 0, bytes);

  const std::uint64_t table_flags = kPtePresent | kPteWritable | (user ? kPteUser : 0);
  const std::uint64_t pdpt_addr = pml4_addr + kPageSize;
  const std::uint64_t pd_addr = pml4_addr + 2 * kPageSize;
  put64(base, pdpt_addr | table_flags);  // PML4[0] covers [0, 512 GiB)
  const std::uint64_t num_pds = (size + kGiB - 1) / kGiB;
  for (std::uint64_t i = 0; i < num_pds; ++i)
    put64(base + kPageSize + 8 * i, (pd_addr + i * kPageSize) | table_flags);
  for (std::uint64_t addr = 0; addr < size; addr += kLargePageSize)
    put64(base + 2 * kPageSize + 8 * (addr / kLargePageSize), addr | table_flags | kPtePs);
  return bytes;
}

std::uint64_t make_segment_descriptor(std::uint32_t base, std::uint32_t limit,
                                      std::uint64_t flags) {
  std::uint64_t d = 0;
  d |= limit & 0xffffULL;
  d |= static_cast<std::uint64_t>(base & 0xffffff) << 16;
  d |= static_cast<std::uint64_t>((limit >> 16) & 0xf) << 48;
  d |= static_cast<std::uint64_t>(base >> 24) << 56;
  return d | flags;
}

void write_gdt(std::span<std::uint8_t> mem, std::uint64_t mem_base, const GuestLayout& layout) {
  std::uint8_t* gdt = slice(mem, mem_base, layout.gdt, kGdtBytes, "GDT");
  const std::uint64_t tss_size = tss_bytes(layout);
  std::uint8_t* tss = slice(mem, mem_base, layout.tss, tss_size, "TSS");

  const std::uint64_t code =
      kDescPresent | kDescS | kDescExec | kDescRw | kDescAccessed | kDescL | kDescG;
  const std::uint64_t data = kDescPresent | kDescS | kDescRw | kDescAccessed | kDescDb | kDescG;
  const std::uint64_t dpl3 = 3ULL << kDescDplShift;
  const std::uint64_t entries[5] = {
      0,
      make_segment_descriptor(0, 0xfffff, code),
      make_segment_descriptor(0, 0xfffff, data),
      make_segment_descriptor(0, 0xfffff, data | dpl3),
      make_segment_descriptor(0, 0xfffff, code | dpl3),
  };
  for (int i = 0; i < 5; ++i) put64(gdt + 8 * i, entries[i]);
  // 16-byte system descriptor for the 64-bit TSS (type busy, as loaded into TR).
  const std::uint64_t tss_lo = make_segment_descriptor(
      static_cast<std::uint32_t>(layout.tss), static_cast<std::uint32_t>(tss_size - 1),
      kDescPresent | (static_cast<std::uint64_t>(kSegTypeTssBusy) << 40));
  put64(gdt + 40, tss_lo);
  put64(gdt + 48, layout.tss >> 32);

  std::memset(tss, 0, tss_size);               // with io_bitmap: every port allowed
  put64(tss + 4, layout.interrupt_stack_top);  // rsp0
  // The bitmap starts right after the TSS; without one that offset is beyond the limit.
  const std::uint16_t iomap_base = kTssBytes;
  std::memcpy(tss + 102, &iomap_base, 2);
  if (layout.io_bitmap) tss[tss_size - 1] = 0xff;  // terminator byte
}

void write_idt_gate(std::span<std::uint8_t> mem, std::uint64_t mem_base, std::uint64_t idt_addr,
                    std::uint8_t vector, std::uint64_t handler, std::uint16_t selector,
                    std::uint8_t ist, std::uint8_t dpl, bool trap) {
  if (ist > 7) throw std::invalid_argument("kvm::x86: IST index " + std::to_string(ist) + " > 7");
  if (dpl > 3) throw std::invalid_argument("kvm::x86: gate DPL " + std::to_string(dpl) + " > 3");
  std::uint8_t* gate = slice(mem, mem_base, idt_addr + 16ULL * vector, 16, "IDT gate");
  std::uint64_t lo = 0;
  lo |= handler & 0xffff;
  lo |= static_cast<std::uint64_t>(selector) << 16;
  lo |= static_cast<std::uint64_t>(ist) << 32;
  lo |= static_cast<std::uint64_t>(trap ? 0xf : 0xe) << 40;
  lo |= static_cast<std::uint64_t>(dpl) << 45;
  lo |= 1ULL << 47;  // present
  lo |= ((handler >> 16) & 0xffff) << 48;
  put64(gate, lo);
  put64(gate + 8, handler >> 32);
}

void write_long_mode_tables(std::span<std::uint8_t> mem, std::uint64_t mem_base,
                            const GuestLayout& layout) {
  check_layout(layout);
  write_identity_page_tables(mem, mem_base, layout.page_tables, layout.mapped_size,
                             layout.user_mode);
  write_gdt(mem, mem_base, layout);
  if (layout.idt) std::memset(slice(mem, mem_base, *layout.idt, kIdtBytes, "IDT"), 0, kIdtBytes);
}

void write_bytes(std::span<std::uint8_t> mem, std::uint64_t mem_base, std::uint64_t addr,
                 std::span<const std::uint8_t> code, const char* what) {
  std::uint8_t* dst = slice(mem, mem_base, addr, code.size(), what);
  if (!code.empty()) std::memcpy(dst, code.data(), code.size());
}

}  // namespace kvm::x86

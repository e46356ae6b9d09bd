#include "kvm/x86/asm.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace kvm::x86 {
namespace {

constexpr std::uint8_t idx(Reg r) { return static_cast<std::uint8_t>(r); }
constexpr std::uint8_t low3(Reg r) { return idx(r) & 7; }
constexpr bool ext(Reg r) { return idx(r) >= 8; }

const char* width_name(Width w) {
  switch (w) {
    case Width::k8:
      return "8-bit";
    case Width::k16:
      return "16-bit";
    case Width::k32:
      return "32-bit";
    case Width::k64:
      return "64-bit";
  }
  return "?";
}

bool fits_i8(std::int64_t v) { return v >= -128 && v <= 127; }
bool fits_i32(std::int64_t v) {
  return v >= std::numeric_limits<std::int32_t>::min() &&
         v <= std::numeric_limits<std::int32_t>::max();
}

[[noreturn]] void fail(const std::string& msg) {
  throw std::invalid_argument("kvm::x86::Assembler: " + msg);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Helpers

void Assembler::put_le(std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) code_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

Width Assembler::natural() const {
  switch (mode_) {
    case Mode::k16:
      return Width::k16;
    case Mode::k32:
      return Width::k32;
    case Mode::k64:
      return Width::k64;
  }
  return Width::k64;
}

Width Assembler::resolve(std::optional<Width> w) const { return w ? *w : natural(); }

void Assembler::check_reg(Reg r, Width w, const char* what) const {
  if (idx(r) > 15) fail(std::string(what) + ": invalid register");
  if (mode_ != Mode::k64) {
    if (ext(r)) fail(std::string(what) + ": registers r8-r15 need 64-bit mode");
    if (w == Width::k8 && idx(r) >= 4)
      fail(std::string(what) + ": spl/bpl/sil/dil need a REX prefix (64-bit mode only)");
  }
}

void Assembler::check_imm_fits(Width w, std::int64_t imm, const char* what) const {
  if (w == Width::k64) return;
  const int bits = 8 * static_cast<int>(w);
  const std::int64_t lo = -(std::int64_t{1} << (bits - 1));
  const std::int64_t hi = (std::int64_t{1} << bits) - 1;
  if (imm < lo || imm > hi)
    fail(std::string(what) + ": immediate " + std::to_string(imm) + " does not fit " +
         width_name(w));
}

void Assembler::prefix(std::optional<Width> w, bool has_reg, Reg reg, bool has_rm, Reg rm,
                       bool mem_operand) {
  if (w == Width::k64 && mode_ != Mode::k64) fail("64-bit operand size needs 64-bit mode");
  if ((w == Width::k16 && mode_ != Mode::k16) || (w == Width::k32 && mode_ == Mode::k16)) db(0x66);
  if (mem_operand && mode_ == Mode::k16) db(0x67);  // 32-bit addressing in 16-bit mode
  std::uint8_t rex = 0;
  if (w == Width::k64) rex |= 0x08;
  if (has_reg && ext(reg)) rex |= 0x04;
  if (has_rm && ext(rm)) rex |= 0x01;
  // Byte access to spl/bpl/sil/dil needs a (possibly empty) REX prefix.
  bool force = w == Width::k8 && ((has_reg && idx(reg) >= 4 && idx(reg) < 8) ||
                                  (has_rm && !mem_operand && idx(rm) >= 4 && idx(rm) < 8));
  if (rex != 0 || force) {
    if (mode_ != Mode::k64) fail("REX prefix needs 64-bit mode");
    db(0x40 | rex);
  }
}

void Assembler::modrm_rr(std::uint8_t reg_field, Reg rm) {
  db(static_cast<std::uint8_t>(0xc0 | ((reg_field & 7) << 3) | low3(rm)));
}

void Assembler::modrm_mem(std::uint8_t reg_field, const Mem& m) {
  const std::uint8_t r = static_cast<std::uint8_t>((reg_field & 7) << 3);
  if (!m.base) {
    // Absolute [disp32] via SIB with no base and no index (not RIP-relative in 64-bit mode).
    bool ok = mode_ == Mode::k64 ? fits_i32(m.disp)
                                 : (fits_i32(m.disp) || (m.disp >= 0 && m.disp <= 0xffffffffLL));
    if (!ok)
      fail("absolute address " + std::to_string(m.disp) +
           " out of range for a 32-bit displacement (use load_abs64/store_abs64 or a base "
           "register)");
    db(static_cast<std::uint8_t>(0x04 | r));
    db(0x25);
    put_le(static_cast<std::uint64_t>(m.disp), 4);
    return;
  }
  const Reg base = *m.base;
  if (!fits_i32(m.disp))
    fail("displacement " + std::to_string(m.disp) + " out of range for disp32");
  std::uint8_t mod;
  if (m.disp == 0 && low3(base) != 5) {
    mod = 0x00;  // [base] (rbp/r13 always need a displacement)
  } else if (fits_i8(m.disp)) {
    mod = 0x40;
  } else {
    mod = 0x80;
  }
  db(static_cast<std::uint8_t>(mod | r | low3(base)));
  if (low3(base) == 4) db(0x24);  // rsp/r12 base needs a SIB byte
  if (mod == 0x40) put_le(static_cast<std::uint64_t>(m.disp), 1);
  if (mod == 0x80) put_le(static_cast<std::uint64_t>(m.disp), 4);
}

void Assembler::modrm_mem_op(std::initializer_list<std::uint8_t> opcode, std::uint8_t ext_op,
                             const Mem& m) {
  if (m.base) check_reg(*m.base, Width::k64, "memory base");
  // lidt/lgdt: in 16-bit mode use the 32-bit operand size so the full 32-bit base is loaded.
  prefix(mode_ == Mode::k16 ? std::optional<Width>(Width::k32) : std::nullopt, false, Reg::Rax,
         m.base.has_value(), m.base.value_or(Reg::Rax), true);
  for (std::uint8_t b : opcode) db(b);
  modrm_mem(ext_op, m);
}

// ---------------------------------------------------------------------------------------------
// Labels

Label Assembler::new_label() {
  labels_.emplace_back(std::nullopt);
  return Label{static_cast<std::uint32_t>(labels_.size() - 1)};
}

void Assembler::check_label(Label l) const {
  if (l.id >= labels_.size())
    fail("label " + std::to_string(l.id) + " was not created by this assembler");
}

void Assembler::bind(Label l) {
  check_label(l);
  if (labels_[l.id]) fail("label " + std::to_string(l.id) + " bound twice");
  labels_[l.id] = code_.size();
  // Resolve pending forward references to this label.
  for (auto it = fixups_.begin(); it != fixups_.end();) {
    if (it->label != l.id) {
      ++it;
      continue;
    }
    patch(it->at, it->end, code_.size(), it->size, l.id);
    it = fixups_.erase(it);
  }
}

void Assembler::patch(std::size_t at, std::size_t end, std::size_t target, std::uint8_t size,
                      std::uint32_t label) {
  const std::int64_t rel = static_cast<std::int64_t>(target) - static_cast<std::int64_t>(end);
  const std::int64_t lim = std::int64_t{1} << (8 * size - 1);
  if (rel < -lim || rel >= lim)
    fail("branch displacement " + std::to_string(rel) + " to label " + std::to_string(label) +
         " out of range for rel" + std::to_string(8 * size));
  for (std::size_t i = 0; i < size; ++i)
    code_[at + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(rel) >> (8 * i));
}

std::size_t Assembler::label_offset(Label l) const {
  check_label(l);
  if (!labels_[l.id]) fail("label " + std::to_string(l.id) + " is not bound");
  return *labels_[l.id];
}

std::vector<std::uint8_t> Assembler::finish() {
  if (!fixups_.empty()) {
    const Fixup& f = fixups_.front();
    fail("unbound label " + std::to_string(f.label) + " referenced at offset " +
         std::to_string(f.insn) + " at finish()");
  }
  return code_;
}

void Assembler::branch(std::initializer_list<std::uint8_t> opcode, Label target,
                       std::uint8_t size) {
  check_label(target);
  const std::size_t insn = code_.size();
  for (std::uint8_t b : opcode) db(b);
  const std::size_t at = code_.size();
  put_le(0, size);
  const std::size_t end = code_.size();
  if (labels_[target.id]) {
    patch(at, end, *labels_[target.id], size, target.id);
  } else {
    fixups_.push_back(Fixup{insn, at, end, target.id, size});
  }
}

// ---------------------------------------------------------------------------------------------
// Raw data

void Assembler::bytes(std::span<const std::uint8_t> b) {
  code_.insert(code_.end(), b.begin(), b.end());
}

void Assembler::align(std::size_t alignment, std::uint8_t fill) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail("align: alignment " + std::to_string(alignment) + " is not a power of two");
  while (code_.size() % alignment != 0) db(fill);
}

// ---------------------------------------------------------------------------------------------
// Moves

void Assembler::mov(Reg dst, std::uint64_t imm) {
  if (mode_ == Mode::k64) {
    if (imm <= 0xffffffffULL) return mov(Width::k32, dst, imm);
    if (fits_i32(static_cast<std::int64_t>(imm))) {
      check_reg(dst, Width::k64, "mov");
      prefix(Width::k64, false, Reg::Rax, true, dst, false);
      db(0xc7);
      modrm_rr(0, dst);
      put_le(imm, 4);
      return;
    }
    return mov(Width::k64, dst, imm);
  }
  mov(natural(), dst, imm);
}

void Assembler::mov(Width w, Reg dst, std::uint64_t imm) {
  check_reg(dst, w, "mov");
  check_imm_fits(w, static_cast<std::int64_t>(imm), "mov");
  prefix(w, false, Reg::Rax, true, dst, false);
  db(static_cast<std::uint8_t>((w == Width::k8 ? 0xb0 : 0xb8) + low3(dst)));
  put_le(imm, static_cast<int>(w));
}

void Assembler::mov(Reg dst, Reg src, std::optional<Width> ow) {
  Width w = resolve(ow);
  check_reg(dst, w, "mov");
  check_reg(src, w, "mov");
  prefix(w, true, src, true, dst, false);
  db(w == Width::k8 ? 0x88 : 0x89);
  modrm_rr(idx(src), dst);
}

void Assembler::load(Width w, Reg dst, Mem m) {
  check_reg(dst, w, "load");
  if (m.base) check_reg(*m.base, Width::k64, "load base");
  prefix(w, true, dst, m.base.has_value(), m.base.value_or(Reg::Rax), true);
  db(w == Width::k8 ? 0x8a : 0x8b);
  modrm_mem(idx(dst), m);
}

void Assembler::load_zx(Width w, Reg dst, Mem m) {
  if (w != Width::k8 && w != Width::k16) fail("load_zx: source width must be 8 or 16 bits");
  check_reg(dst, Width::k32, "load_zx");
  if (m.base) check_reg(*m.base, Width::k64, "load_zx base");
  prefix(Width::k32, true, dst, m.base.has_value(), m.base.value_or(Reg::Rax), true);
  db(0x0f);
  db(w == Width::k8 ? 0xb6 : 0xb7);
  modrm_mem(idx(dst), m);
}

void Assembler::store(Width w, Mem m, Reg src) {
  check_reg(src, w, "store");
  if (m.base) check_reg(*m.base, Width::k64, "store base");
  prefix(w, true, src, m.base.has_value(), m.base.value_or(Reg::Rax), true);
  db(w == Width::k8 ? 0x88 : 0x89);
  modrm_mem(idx(src), m);
}

void Assembler::store_imm(Width w, Mem m, std::int64_t imm) {
  if (w == Width::k64) {
    if (!fits_i32(imm))
      fail("store_imm: 64-bit store takes a sign-extended 32-bit immediate, got " +
           std::to_string(imm));
  } else {
    check_imm_fits(w, imm, "store_imm");
  }
  if (m.base) check_reg(*m.base, Width::k64, "store_imm base");
  prefix(w, false, Reg::Rax, m.base.has_value(), m.base.value_or(Reg::Rax), true);
  db(w == Width::k8 ? 0xc6 : 0xc7);
  modrm_mem(0, m);
  put_le(static_cast<std::uint64_t>(imm), w == Width::k64 ? 4 : static_cast<int>(w));
}

void Assembler::load_abs64(Width w, std::uint64_t addr) {
  if (mode_ != Mode::k64) fail("load_abs64 needs 64-bit mode");
  prefix(w, false, Reg::Rax, false, Reg::Rax, false);
  db(w == Width::k8 ? 0xa0 : 0xa1);
  put_le(addr, 8);
}

void Assembler::store_abs64(Width w, std::uint64_t addr) {
  if (mode_ != Mode::k64) fail("store_abs64 needs 64-bit mode");
  prefix(w, false, Reg::Rax, false, Reg::Rax, false);
  db(w == Width::k8 ? 0xa2 : 0xa3);
  put_le(addr, 8);
}

void Assembler::lea(Reg dst, Mem m) {
  Width w = natural();
  check_reg(dst, w, "lea");
  if (m.base) check_reg(*m.base, Width::k64, "lea base");
  prefix(w, true, dst, m.base.has_value(), m.base.value_or(Reg::Rax), true);
  db(0x8d);
  modrm_mem(idx(dst), m);
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

void Assembler::alu_rr(std::uint8_t op, Reg dst, Reg src, std::optional<Width> ow) {
  Width w = resolve(ow);
  check_reg(dst, w, "alu");
  check_reg(src, w, "alu");
  prefix(w, true, src, true, dst, false);
  db(static_cast<std::uint8_t>(op * 8 + (w == Width::k8 ? 0 : 1)));
  modrm_rr(idx(src), dst);
}

void Assembler::alu_ri(std::uint8_t op, Reg dst, std::int32_t imm, std::optional<Width> ow) {
  Width w = resolve(ow);
  check_reg(dst, w, "alu");
  check_imm_fits(w == Width::k64 ? Width::k32 : w, imm, "alu");
  prefix(w, false, Reg::Rax, true, dst, false);
  if (w == Width::k8) {
    db(0x80);
    modrm_rr(op, dst);
    put_le(static_cast<std::uint32_t>(imm), 1);
  } else if (fits_i8(imm)) {
    db(0x83);
    modrm_rr(op, dst);
    put_le(static_cast<std::uint32_t>(imm), 1);
  } else {
    db(0x81);
    modrm_rr(op, dst);
    put_le(static_cast<std::uint32_t>(imm), w == Width::k16 ? 2 : 4);
  }
}

void Assembler::cmp(Width w, Mem m, std::int32_t imm) {
  check_imm_fits(w == Width::k64 ? Width::k32 : w, imm, "cmp");
  if (m.base) check_reg(*m.base, Width::k64, "cmp base");
  prefix(w, false, Reg::Rax, m.base.has_value(), m.base.value_or(Reg::Rax), true);
  if (w == Width::k8) {
    db(0x80);
    modrm_mem(7, m);
    put_le(static_cast<std::uint32_t>(imm), 1);
  } else if (fits_i8(imm)) {
    db(0x83);
    modrm_mem(7, m);
    put_le(static_cast<std::uint32_t>(imm), 1);
  } else {
    db(0x81);
    modrm_mem(7, m);
    put_le(static_cast<std::uint32_t>(imm), w == Width::k16 ? 2 : 4);
  }
}

void Assembler::test(Reg a, Reg b, std::optional<Width> ow) {
  Width w = resolve(ow);
  check_reg(a, w, "test");
  check_reg(b, w, "test");
  prefix(w, true, b, true, a, false);
  db(w == Width::k8 ? 0x84 : 0x85);
  modrm_rr(idx(b), a);
}

void Assembler::test(Reg a, std::int32_t imm, std::optional<Width> ow) {
  Width w = resolve(ow);
  check_reg(a, w, "test");
  check_imm_fits(w == Width::k64 ? Width::k32 : w, imm, "test");
  prefix(w, false, Reg::Rax, true, a, false);
  db(w == Width::k8 ? 0xf6 : 0xf7);
  modrm_rr(0, a);
  put_le(static_cast<std::uint32_t>(imm), w == Width::k8 ? 1 : (w == Width::k16 ? 2 : 4));
}

void Assembler::unary(std::uint8_t opcode8, std::uint8_t ext_op, Reg r, std::optional<Width> ow) {
  Width w = resolve(ow);
  check_reg(r, w, "inc/dec");
  prefix(w, false, Reg::Rax, true, r, false);
  db(static_cast<std::uint8_t>(w == Width::k8 ? opcode8 : opcode8 + 1));
  modrm_rr(ext_op, r);
}

void Assembler::shift(std::uint8_t ext_op, Reg r, std::uint8_t imm, std::optional<Width> ow) {
  Width w = resolve(ow);
  check_reg(r, w, "shift");
  if (imm >= 8 * static_cast<unsigned>(w))
    fail("shift count " + std::to_string(imm) + " >= operand width");
  prefix(w, false, Reg::Rax, true, r, false);
  db(w == Width::k8 ? 0xc0 : 0xc1);
  modrm_rr(ext_op, r);
  db(imm);
}

// ---------------------------------------------------------------------------------------------
// Control flow

void Assembler::jmp(Label target) { branch({0xe9}, target, mode_ == Mode::k16 ? 2 : 4); }

void Assembler::jcc(Cond c, Label target) {
  if (static_cast<std::uint8_t>(c) > 0xf) fail("jcc: invalid condition code");
  branch({0x0f, static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(c))}, target,
         mode_ == Mode::k16 ? 2 : 4);
}

void Assembler::loop(Label target) { branch({0xe2}, target, 1); }

void Assembler::call(Label target) { branch({0xe8}, target, mode_ == Mode::k16 ? 2 : 4); }

void Assembler::jmp(Reg r) {
  check_reg(r, natural(), "jmp");
  prefix(std::nullopt, false, Reg::Rax, true, r, false);
  db(0xff);
  modrm_rr(4, r);
}

void Assembler::call(Reg r) {
  check_reg(r, natural(), "call");
  prefix(std::nullopt, false, Reg::Rax, true, r, false);
  db(0xff);
  modrm_rr(2, r);
}

void Assembler::push(Reg r) {
  check_reg(r, natural(), "push");
  if (ext(r)) db(0x41);
  db(static_cast<std::uint8_t>(0x50 + low3(r)));
}

void Assembler::pop(Reg r) {
  check_reg(r, natural(), "pop");
  if (ext(r)) db(0x41);
  db(static_cast<std::uint8_t>(0x58 + low3(r)));
}

void Assembler::push_imm(std::int32_t imm) {
  if (fits_i8(imm)) {
    db(0x6a);
    put_le(static_cast<std::uint32_t>(imm), 1);
  } else if (mode_ == Mode::k16) {
    check_imm_fits(Width::k16, imm, "push_imm");
    db(0x68);
    put_le(static_cast<std::uint32_t>(imm), 2);
  } else {
    db(0x68);
    put_le(static_cast<std::uint32_t>(imm), 4);
  }
}

// ---------------------------------------------------------------------------------------------
// Port I/O

void Assembler::check_io_width(Width w) const {
  if (w == Width::k64) fail("port I/O is 8, 16 or 32 bits wide, not 64");
}

void Assembler::io(Width w, std::uint8_t opcode8, std::uint8_t port) {
  check_io_width(w);
  prefix(w, false, Reg::Rax, false, Reg::Rax, false);
  db(static_cast<std::uint8_t>(w == Width::k8 ? opcode8 : opcode8 + 1));
  db(port);
}

void Assembler::io_dx(Width w, std::uint8_t opcode8) {
  check_io_width(w);
  prefix(w, false, Reg::Rax, false, Reg::Rax, false);
  db(static_cast<std::uint8_t>(w == Width::k8 ? opcode8 : opcode8 + 1));
}

void Assembler::string_io(Width w, std::uint8_t opcode8, bool rep) {
  check_io_width(w);
  if (rep) db(0xf3);
  prefix(w, false, Reg::Rax, false, Reg::Rax, false);
  db(static_cast<std::uint8_t>(w == Width::k8 ? opcode8 : opcode8 + 1));
}

// ---------------------------------------------------------------------------------------------
// System

void Assembler::int_(std::uint8_t vector) {
  db(0xcd);
  db(vector);
}

void Assembler::ltr(Reg r) {
  check_reg(r, Width::k16, "ltr");
  prefix(std::nullopt, false, Reg::Rax, true, r, false);
  op2(0x0f, 0x00);
  modrm_rr(3, r);
}

void Assembler::mov_to_cr(int cr, Reg src) {
  if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8)
    fail("mov_to_cr: no such control register cr" + std::to_string(cr));
  if (cr == 8 && mode_ != Mode::k64) fail("mov_to_cr: cr8 needs 64-bit mode");
  check_reg(src, natural(), "mov_to_cr");
  prefix(std::nullopt, cr >= 8, static_cast<Reg>(cr), true, src, false);
  op2(0x0f, 0x22);
  modrm_rr(static_cast<std::uint8_t>(cr), src);
}

void Assembler::mov_from_cr(Reg dst, int cr) {
  if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8)
    fail("mov_from_cr: no such control register cr" + std::to_string(cr));
  if (cr == 8 && mode_ != Mode::k64) fail("mov_from_cr: cr8 needs 64-bit mode");
  check_reg(dst, natural(), "mov_from_cr");
  prefix(std::nullopt, cr >= 8, static_cast<Reg>(cr), true, dst, false);
  op2(0x0f, 0x20);
  modrm_rr(static_cast<std::uint8_t>(cr), dst);
}

void Assembler::iretq() {
  if (mode_ != Mode::k64) fail("iretq needs 64-bit mode");
  db(0x48);
  db(0xcf);
}

void Assembler::syscall() {
  if (mode_ != Mode::k64) fail("syscall needs 64-bit mode");
  op2(0x0f, 0x05);
}

}  // namespace kvm::x86

// Tiny x86 machine-code emitter for writing test and example guests.
//
// Not a general assembler: it encodes the handful of instructions a VMM test guest needs
// (moves, ALU, jumps with labels, port/string I/O, hlt/cpuid/msr/...), in 64-bit mode by
// default and, for a subset, in 16-bit real mode or 32-bit mode. Every method appends to an
// internal byte buffer; operands are validated at emit time and errors throw
// std::invalid_argument. Labels are resolved by finish().
//
// Example:
//   Assembler a;
//   Label loop = a.new_label();
//   a.mov(Reg::Rdx, 0x3f8);
//   a.bind(loop);
//   a.out_dx(Width::k8);
//   a.dec(Reg::Rcx);
//   a.jne(loop);
//   a.hlt();
//   std::vector<std::uint8_t> code = a.finish();
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <vector>

namespace kvm::x86 {

// General-purpose registers in hardware encoding order. With Width::k8 the first eight mean
// al, cl, dl, bl, spl, bpl, sil, dil (the latter four need a REX prefix, so 64-bit mode only).
enum class Reg : std::uint8_t {
  Rax = 0,
  Rcx,
  Rdx,
  Rbx,
  Rsp,
  Rbp,
  Rsi,
  Rdi,
  R8,
  R9,
  R10,
  R11,
  R12,
  R13,
  R14,
  R15,
};

// Operand width in bytes.
enum class Width : std::uint8_t { k8 = 1, k16 = 2, k32 = 4, k64 = 8 };

// Processor mode the code is assembled for (decides operand-size prefixes and branch sizes).
enum class Mode : std::uint8_t { k16, k32, k64 };

// Condition codes for jcc, in hardware encoding order (low nibble of 0F 8x).
enum class Cond : std::uint8_t {
  O = 0x0,   // overflow
  NO = 0x1,  // not overflow
  B = 0x2,   // below (CF=1), unsigned <
  AE = 0x3,  // above or equal (CF=0), unsigned >=
  E = 0x4,   // equal / zero
  NE = 0x5,  // not equal / not zero
  BE = 0x6,  // below or equal, unsigned <=
  A = 0x7,   // above, unsigned >
  S = 0x8,   // sign
  NS = 0x9,  // not sign
  P = 0xa,   // parity even
  NP = 0xb,  // parity odd
  L = 0xc,   // less, signed <
  GE = 0xd,  // greater or equal, signed >=
  LE = 0xe,  // less or equal, signed <=
  G = 0xf,   // greater, signed >
};

// A jump target; create with Assembler::new_label(), place with Assembler::bind().
struct Label {
  std::uint32_t id = UINT32_MAX;
};

// A memory operand: [base + disp] or, without base, the absolute address [disp].
// In 64-bit mode an absolute address must fit a sign-extended 32-bit displacement (the
// accumulator-only moffs64 form is available via Assembler::load_abs64/store_abs64).
// In 16-bit mode the operand is encoded with 32-bit addressing (0x67 prefix).
struct Mem {
  std::optional<Reg> base;
  std::int64_t disp = 0;
};

// [base + disp]
inline Mem mem(Reg base, std::int64_t disp = 0) { return Mem{base, disp}; }
// [absolute address]
inline Mem abs_addr(std::uint64_t addr) {
  return Mem{std::nullopt, static_cast<std::int64_t>(addr)};
}

class Assembler {
 public:
  // Creates an empty assembler for `mode` (default: 64-bit long mode).
  explicit Assembler(Mode mode = Mode::k64) : mode_(mode) {}

  // The mode the code is assembled for.
  Mode mode() const { return mode_; }
  // Current offset (bytes emitted so far).
  std::size_t size() const { return code_.size(); }

  // ---- labels ----
  // Creates a new, unbound label.
  Label new_label();
  // Binds `l` to the current offset; throws if already bound.
  void bind(Label l);
  // Offset a bound label refers to; throws if unbound.
  std::size_t label_offset(Label l) const;
  // Resolves all fixups and returns the code; throws if a used label is unbound.
  std::vector<std::uint8_t> finish();

  // ---- raw data ----
  // Appends raw bytes.
  void bytes(std::span<const std::uint8_t> b);
  // Appends one raw byte.
  void db(std::uint8_t b) { code_.push_back(b); }
  // Appends a little-endian 16-bit value.
  void dw(std::uint16_t v) { put_le(v, 2); }
  // Appends a little-endian 32-bit value.
  void dd(std::uint32_t v) { put_le(v, 4); }
  // Appends a little-endian 64-bit value.
  void dq(std::uint64_t v) { put_le(v, 8); }
  // Pads with `fill` until size() is a multiple of `alignment` (a power of two).
  void align(std::size_t alignment, std::uint8_t fill = 0x90);

  // ---- moves ----
  // dst = imm, shortest encoding that yields the full value in the mode's natural width
  // (64-bit mode: mov r32,imm32 / mov r64,simm32 / movabs; 16-bit mode: mov r16,imm16).
  void mov(Reg dst, std::uint64_t imm);
  // dst = imm with explicit width (k64 always uses the 10-byte movabs form).
  void mov(Width w, Reg dst, std::uint64_t imm);
  // dst = imm as 32-bit (in 64-bit mode this zero-extends into the full register).
  void mov32(Reg dst, std::uint32_t imm) { mov(Width::k32, dst, imm); }
  // dst = src (register to register) at width w (default k64; k16 default in 16-bit mode).
  void mov(Reg dst, Reg src, std::optional<Width> w = std::nullopt);
  // dst = [m] at width w (8/16 bit loads leave the upper bits of dst unchanged).
  void load(Width w, Reg dst, Mem m);
  // dst = zero-extended byte/word [m] (movzx r32, m8/m16).
  void load_zx(Width w, Reg dst, Mem m);
  // [m] = src at width w.
  void store(Width w, Mem m, Reg src);
  // [m] = imm at width w (k64 stores a sign-extended 32-bit immediate).
  void store_imm(Width w, Mem m, std::int64_t imm);
  // al/ax/eax/rax = [addr] with a full 64-bit absolute address (moffs form, 64-bit mode).
  void load_abs64(Width w, std::uint64_t addr);
  // [addr] = al/ax/eax/rax with a full 64-bit absolute address (moffs form, 64-bit mode).
  void store_abs64(Width w, std::uint64_t addr);
  // dst = address of m (lea).
  void lea(Reg dst, Mem m);

  // ---- arithmetic / logic (register forms; width defaults to the mode's natural width) ----
  // dst += src.
  void add(Reg dst, Reg src, std::optional<Width> w = std::nullopt) { alu_rr(0, dst, src, w); }
  // dst += imm (sign-extended 32-bit immediate).
  void add(Reg dst, std::int32_t imm, std::optional<Width> w = std::nullopt) {
    alu_ri(0, dst, imm, w);
  }
  // dst -= src.
  void sub(Reg dst, Reg src, std::optional<Width> w = std::nullopt) { alu_rr(5, dst, src, w); }
  // dst -= imm.
  void sub(Reg dst, std::int32_t imm, std::optional<Width> w = std::nullopt) {
    alu_ri(5, dst, imm, w);
  }
  // dst &= src.
  void and_(Reg dst, Reg src, std::optional<Width> w = std::nullopt) { alu_rr(4, dst, src, w); }
  // dst &= imm.
  void and_(Reg dst, std::int32_t imm, std::optional<Width> w = std::nullopt) {
    alu_ri(4, dst, imm, w);
  }
  // dst |= src.
  void or_(Reg dst, Reg src, std::optional<Width> w = std::nullopt) { alu_rr(1, dst, src, w); }
  // dst |= imm.
  void or_(Reg dst, std::int32_t imm, std::optional<Width> w = std::nullopt) {
    alu_ri(1, dst, imm, w);
  }
  // dst ^= src.
  void xor_(Reg dst, Reg src, std::optional<Width> w = std::nullopt) { alu_rr(6, dst, src, w); }
  // dst ^= imm.
  void xor_(Reg dst, std::int32_t imm, std::optional<Width> w = std::nullopt) {
    alu_ri(6, dst, imm, w);
  }
  // flags = a - b.
  void cmp(Reg a, Reg b, std::optional<Width> w = std::nullopt) { alu_rr(7, a, b, w); }
  // flags = a - imm.
  void cmp(Reg a, std::int32_t imm, std::optional<Width> w = std::nullopt) { alu_ri(7, a, imm, w); }
  // flags = [m] - imm at width w.
  void cmp(Width w, Mem m, std::int32_t imm);
  // flags = a & b.
  void test(Reg a, Reg b, std::optional<Width> w = std::nullopt);
  // flags = a & imm.
  void test(Reg a, std::int32_t imm, std::optional<Width> w = std::nullopt);
  // r += 1.
  void inc(Reg r, std::optional<Width> w = std::nullopt) { unary(0xfe, 0, r, w); }
  // r -= 1.
  void dec(Reg r, std::optional<Width> w = std::nullopt) { unary(0xfe, 1, r, w); }
  // r <<= imm.
  void shl(Reg r, std::uint8_t imm, std::optional<Width> w = std::nullopt) { shift(4, r, imm, w); }
  // r >>= imm (logical).
  void shr(Reg r, std::uint8_t imm, std::optional<Width> w = std::nullopt) { shift(5, r, imm, w); }

  // ---- control flow (rel32 in 32/64-bit mode, rel16 in 16-bit mode) ----
  // Unconditional jump to label.
  void jmp(Label target);
  // Indirect jump to the address in r.
  void jmp(Reg r);
  // Conditional jump to label.
  void jcc(Cond c, Label target);
  // Jump if equal / zero.
  void je(Label target) { jcc(Cond::E, target); }
  // Jump if not equal / not zero.
  void jne(Label target) { jcc(Cond::NE, target); }
  // Decrement rcx (cx in 16-bit mode) and jump if non-zero; rel8 only (range checked).
  void loop(Label target);
  // Call label.
  void call(Label target);
  // Indirect call through r.
  void call(Reg r);
  // Near return.
  void ret() { db(0xc3); }
  // Push register (64-bit in 64-bit mode).
  void push(Reg r);
  // Push sign-extended 32-bit immediate (16-bit immediate in 16-bit mode).
  void push_imm(std::int32_t imm);
  // Pop register.
  void pop(Reg r);

  // ---- port I/O ----
  // al/ax/eax = in(port).
  void in(Width w, std::uint8_t port) { io(w, 0xe4, port); }
  // al/ax/eax = in(dx).
  void in_dx(Width w) { io_dx(w, 0xec); }
  // out(port, al/ax/eax).
  void out(Width w, std::uint8_t port) { io(w, 0xe6, port); }
  // out(dx, al/ax/eax).
  void out_dx(Width w) { io_dx(w, 0xee); }
  // outs{b,w,d}: out(dx, [rsi]), rsi += w (no rep).
  void outs(Width w) { string_io(w, 0x6e, false); }
  // ins{b,w,d}: [rdi] = in(dx), rdi += w (no rep).
  void ins(Width w) { string_io(w, 0x6c, false); }
  // rep outs{b,w,d}: rcx times out(dx, [rsi]).
  void rep_outs(Width w) { string_io(w, 0x6e, true); }
  // rep ins{b,w,d}: rcx times [rdi] = in(dx).
  void rep_ins(Width w) { string_io(w, 0x6c, true); }
  // rep outsb.
  void rep_outsb() { rep_outs(Width::k8); }
  // rep insb.
  void rep_insb() { rep_ins(Width::k8); }

  // ---- system ----
  // hlt.
  void hlt() { db(0xf4); }
  // cpuid (eax/ecx in, eax/ebx/ecx/edx out).
  void cpuid() { op2(0x0f, 0xa2); }
  // rdmsr: edx:eax = MSR[ecx].
  void rdmsr() { op2(0x0f, 0x32); }
  // wrmsr: MSR[ecx] = edx:eax.
  void wrmsr() { op2(0x0f, 0x30); }
  // rdtsc: edx:eax = TSC.
  void rdtsc() { op2(0x0f, 0x31); }
  // int3 breakpoint.
  void int3() { db(0xcc); }
  // int imm8 software interrupt.
  void int_(std::uint8_t vector);
  // nop.
  void nop() { db(0x90); }
  // ud2 (guaranteed #UD).
  void ud2() { op2(0x0f, 0x0b); }
  // lidt [m] (pseudo-descriptor: 2-byte limit + base).
  void lidt(Mem m) { modrm_mem_op({0x0f, 0x01}, 3, m); }
  // lgdt [m].
  void lgdt(Mem m) { modrm_mem_op({0x0f, 0x01}, 2, m); }
  // ltr r16 (load task register from selector in r).
  void ltr(Reg r);
  // mov crN, r (64-bit in 64-bit mode, 32-bit otherwise).
  void mov_to_cr(int cr, Reg src);
  // mov r, crN.
  void mov_from_cr(Reg dst, int cr);
  // sti.
  void sti() { db(0xfb); }
  // cli.
  void cli() { db(0xfa); }
  // iretq (64-bit mode only).
  void iretq();
  // vmcall (Intel hypercall).
  void vmcall() { op3(0x0f, 0x01, 0xc1); }
  // vmmcall (AMD hypercall).
  void vmmcall() { op3(0x0f, 0x01, 0xd9); }
  // pause.
  void pause() { op2(0xf3, 0x90); }
  // syscall (64-bit mode only).
  void syscall();

 private:
  struct Fixup {
    std::size_t insn;     // offset of the branch instruction (for error messages)
    std::size_t at;       // offset of the displacement field
    std::size_t end;      // offset the displacement is relative to (end of instruction)
    std::uint32_t label;  // target label id
    std::uint8_t size;    // displacement size: 1, 2 or 4 bytes
  };

  void put_le(std::uint64_t v, int n);
  void op2(std::uint8_t a, std::uint8_t b) { db(a), db(b); }
  void op3(std::uint8_t a, std::uint8_t b, std::uint8_t c) { db(a), db(b), db(c); }
  Width natural() const;
  Width resolve(std::optional<Width> w) const;
  void check_reg(Reg r, Width w, const char* what) const;
  // Emits operand-size prefix and REX for a width and the register fields (reg, rm/base).
  void prefix(std::optional<Width> w, bool has_reg, Reg reg, bool has_rm, Reg rm, bool mem_operand);
  void modrm_rr(std::uint8_t reg_field, Reg rm);
  void modrm_mem(std::uint8_t reg_field, const Mem& m);
  void modrm_mem_op(std::initializer_list<std::uint8_t> opcode, std::uint8_t ext, const Mem& m);
  void alu_rr(std::uint8_t op, Reg dst, Reg src, std::optional<Width> w);
  void alu_ri(std::uint8_t op, Reg dst, std::int32_t imm, std::optional<Width> w);
  void unary(std::uint8_t opcode8, std::uint8_t ext, Reg r, std::optional<Width> w);
  void shift(std::uint8_t ext, Reg r, std::uint8_t imm, std::optional<Width> w);
  void io(Width w, std::uint8_t opcode8, std::uint8_t port);
  void io_dx(Width w, std::uint8_t opcode8);
  void string_io(Width w, std::uint8_t opcode8, bool rep);
  void check_io_width(Width w) const;
  void branch(std::initializer_list<std::uint8_t> opcode, Label target, std::uint8_t size);
  void check_label(Label l) const;
  // Writes the displacement from `end` to `target` into the `size`-byte field at `at`.
  void patch(std::size_t at, std::size_t end, std::size_t target, std::uint8_t size,
             std::uint32_t label);
  void check_imm_fits(Width w, std::int64_t imm, const char* what) const;

  Mode mode_;
  std::vector<std::uint8_t> code_;
  std::vector<std::optional<std::size_t>> labels_;
  std::vector<Fixup> fixups_;
};

}  // namespace kvm::x86

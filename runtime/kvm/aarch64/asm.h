// kvm::aarch64::Assembler: a small A64 machine-code emitter for test and example guests.
//
// It covers what guests of a VMM test need at EL1 with the MMU off: 64-bit immediates
// (movz/movk), register moves and adds, loads and stores of 1, 2, 4 and 8 bytes at [Xn + unsigned
// offset], add/sub immediates, compare and branch with labels, hvc/smc, wfi, msr/mrs of system
// registers by encoding, DAIF masking, isb and eret. Bad operands throw std::invalid_argument when
// the instruction is emitted; finish() throws if a used label is still unbound.
#pragma once

#include <cstdint>
#include <vector>

namespace kvm::aarch64 {

// X0..X30; 31 is XZR in data instructions and SP in address bases (as in the architecture).
enum class X : std::uint8_t {};
constexpr X x(unsigned n) { return static_cast<X>(n); }
inline constexpr X xzr = static_cast<X>(31);

// A system register by its (op0, op1, CRn, CRm, op2) encoding, as in the Arm ARM.
struct SysReg {
  std::uint8_t op0, op1, crn, crm, op2;
};
namespace sysreg {
inline constexpr SysReg kVbarEl1{3, 0, 12, 0, 0};
inline constexpr SysReg kMpidrEl1{3, 0, 0, 0, 5};
inline constexpr SysReg kIccSreEl1{3, 0, 12, 12, 5};
inline constexpr SysReg kIccPmrEl1{3, 0, 4, 6, 0};
inline constexpr SysReg kIccIgrpen1El1{3, 0, 12, 12, 7};
inline constexpr SysReg kIccIar1El1{3, 0, 12, 12, 0};
inline constexpr SysReg kIccEoir1El1{3, 0, 12, 12, 1};
}  // namespace sysreg

// Condition codes of b.cond.
enum class Cond : std::uint8_t { Eq = 0, Ne = 1, Hs = 2, Lo = 3, Hi = 8, Ls = 9, Ge = 10, Lt = 11 };

class Assembler {
 public:
  struct Label {
    int id = -1;
  };

  Label new_label();
  void bind(Label l);  // the next instruction's address
  std::uint64_t size() const { return code_.size() * 4; }

  void mov(X rd, std::uint64_t imm);  // movz + movk as needed
  void mov_reg(X rd, X rn);           // orr rd, xzr, rn
  void add(X rd, X rn, std::uint32_t imm12);
  void add_reg(X rd, X rn, X rm);  // add rd, rn, rm
  void sub(X rd, X rn, std::uint32_t imm12);
  void cmp(X rn, std::uint32_t imm12);  // subs xzr, rn, #imm
  // str/ldr of `bytes` (1, 2, 4, 8) at [rn + offset]; offset a multiple of bytes.
  void str(unsigned bytes, X rt, X rn, std::uint32_t offset = 0);
  void ldr(unsigned bytes, X rt, X rn, std::uint32_t offset = 0);

  void b(Label l);
  void b(Cond c, Label l);
  void cbz(X rt, Label l);
  void cbnz(X rt, Label l);

  void hvc(std::uint16_t imm = 0);
  void smc(std::uint16_t imm = 0);
  void wfi();
  void nop();
  void isb();
  void eret();
  void msr(SysReg r, X rt);
  void mrs(X rt, SysReg r);
  void daif_clear(std::uint8_t bits);  // msr daifclr, #bits (2 = IRQ)
  void daif_set(std::uint8_t bits);
  void word(std::uint32_t raw);  // any other instruction
  // Pads with nops to `offset` bytes from the start (vector tables: 0x80-byte slots).
  void align_to(std::uint64_t offset);

  // The code, little endian; throws if a branch refers to an unbound label.
  std::vector<std::uint8_t> finish() const;

 private:
  enum class Fix : std::uint8_t { Imm26, Imm19 };
  struct Use {
    std::size_t at;
    int label;
    Fix kind;
  };
  void branch(std::uint32_t base, Label l, Fix kind);

  std::vector<std::uint32_t> code_;
  std::vector<std::int64_t> labels_;  // instruction index, -1 while unbound
  std::vector<Use> uses_;
};

}  // namespace kvm::aarch64

// kvm::riscv64::Assembler: a small RV64I machine-code emitter for test and example guests.
//
// It covers what guests of a VMM test need in (V)S-mode with paging off: li of any 64-bit
// value, add/addi/slli, loads and stores of 1, 2, 4 and 8 bytes at [rs1 + imm12],
// compare-and-branch and jumps with labels, ecall (SBI calls), wfi and the Zicsr
// instructions. Uncompressed instructions only. Bad operands throw std::invalid_argument when
// the instruction is emitted; finish() throws if a used label is still unbound.
#pragma once

#include <cstdint>
#include <vector>

namespace kvm::riscv64 {

// x0..x31 and their ABI names.
enum class Reg : std::uint8_t {
  zero = 0,
  ra,
  sp,
  gp,
  tp,
  t0,
  t1,
  t2,
  s0,
  s1,
  a0,
  a1,
  a2,
  a3,
  a4,
  a5,
  a6,
  a7,
  s2,
  s3,
  s4,
  s5,
  s6,
  s7,
  s8,
  s9,
  s10,
  s11,
  t3,
  t4,
  t5,
  t6,
};

// Supervisor CSR numbers (the privileged spec).
namespace csr {
inline constexpr std::uint16_t kSstatus = 0x100;
inline constexpr std::uint16_t kSie = 0x104;
inline constexpr std::uint16_t kStvec = 0x105;
inline constexpr std::uint16_t kSscratch = 0x140;
inline constexpr std::uint16_t kSepc = 0x141;
inline constexpr std::uint16_t kScause = 0x142;
inline constexpr std::uint16_t kSip = 0x144;
inline constexpr std::uint16_t kTime = 0xc01;
}  // namespace csr

class Assembler {
 public:
  struct Label {
    int id = -1;
  };

  Label new_label();
  void bind(Label l);
  std::uint64_t size() const { return code_.size() * 4; }

  void li(Reg rd, std::uint64_t imm);  // lui/addiw/slli/addi as needed
  void mv(Reg rd, Reg rs) { addi(rd, rs, 0); }
  void addi(Reg rd, Reg rs, std::int32_t imm12);
  void add(Reg rd, Reg rs1, Reg rs2);
  void slli(Reg rd, Reg rs, unsigned shamt);
  // Stores and (zero-extending for 1, 2 and 4 bytes) loads of `bytes` at [base + offset].
  void store(unsigned bytes, Reg src, Reg base, std::int32_t offset = 0);
  void load(unsigned bytes, Reg rd, Reg base, std::int32_t offset = 0);

  void beq(Reg a, Reg b, Label l);
  void bne(Reg a, Reg b, Label l);
  void bltu(Reg a, Reg b, Label l);
  void j(Label l);  // jal x0

  void ecall();
  void wfi();
  void nop() { addi(Reg::zero, Reg::zero, 0); }
  void csrr(Reg rd, std::uint16_t csr);  // csrrs rd, csr, x0
  void csrw(std::uint16_t csr, Reg rs);  // csrrw x0, csr, rs
  void csrs(std::uint16_t csr, Reg rs);  // csrrs x0, csr, rs (set bits)
  void word(std::uint32_t raw);          // any other instruction

  // The code, little endian; throws if a branch refers to an unbound label.
  std::vector<std::uint8_t> finish() const;

 private:
  enum class Fix : std::uint8_t { Branch, Jal };
  struct Use {
    std::size_t at;
    int label;
    Fix kind;
  };
  void branch(std::uint32_t funct3, Reg a, Reg b, Label l);
  void li32(Reg rd, std::int32_t imm);

  std::vector<std::uint32_t> code_;
  std::vector<std::int64_t> labels_;  // instruction index, -1 while unbound
  std::vector<Use> uses_;
};

}  // namespace kvm::riscv64

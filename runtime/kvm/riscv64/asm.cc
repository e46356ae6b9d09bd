#include "kvm/riscv64/asm.h"

#include <stdexcept>
#include <string>

namespace kvm::riscv64 {
namespace {

std::uint32_t r(Reg reg) { return static_cast<std::uint32_t>(reg); }

void check_imm12(std::int32_t imm) {
  if (imm < -2048 || imm > 2047) {
    throw std::invalid_argument("riscv64: immediate " + std::to_string(imm) + " outside 12 bits");
  }
}

std::uint32_t i_type(std::uint32_t opcode, std::uint32_t funct3, Reg rd, Reg rs1,
                     std::int32_t imm) {
  check_imm12(imm);
  return (static_cast<std::uint32_t>(imm) & 0xfff) << 20 | r(rs1) << 15 | funct3 << 12 |
         r(rd) << 7 | opcode;
}

std::uint32_t width_funct3(unsigned bytes) {
  switch (bytes) {
    case 1:
      return 0;
    case 2:
      return 1;
    case 4:
      return 2;
    case 8:
      return 3;
  }
  throw std::invalid_argument("riscv64: access of " + std::to_string(bytes) + " bytes");
}

constexpr std::int64_t sext12(std::uint64_t v) {
  return static_cast<std::int64_t>((v & 0xfff) ^ 0x800) - 0x800;
}

}  // namespace

Assembler::Label Assembler::new_label() {
  labels_.push_back(-1);
  return Label{static_cast<int>(labels_.size() - 1)};
}

void Assembler::bind(Label l) {
  if (l.id < 0 || static_cast<std::size_t>(l.id) >= labels_.size()) {
    throw std::invalid_argument("riscv64: unknown label");
  }
  if (labels_[l.id] >= 0) throw std::invalid_argument("riscv64: label bound twice");
  labels_[l.id] = static_cast<std::int64_t>(code_.size());
}

void Assembler::li32(Reg rd, std::int32_t imm) {
  std::int64_t lo = sext12(static_cast<std::uint32_t>(imm));
  auto hi = static_cast<std::uint32_t>((static_cast<std::int64_t>(imm) - lo) >> 12) & 0xfffff;
  if (hi == 0) {
    addi(rd, Reg::zero, static_cast<std::int32_t>(lo));
    return;
  }
  code_.push_back(hi << 12 | r(rd) << 7 | 0x37);  // lui
  // addiw: the 32-bit sum, sign-extended, which is what a 32-bit imm means.
  if (lo != 0) code_.push_back(i_type(0x1b, 0, rd, rd, static_cast<std::int32_t>(lo)));
}

void Assembler::li(Reg rd, std::uint64_t imm) {
  auto v = static_cast<std::int64_t>(imm);
  if (v >= INT32_MIN && v <= INT32_MAX) {
    li32(rd, static_cast<std::int32_t>(v));
    return;
  }
  // The upper part first, then shift and add the low 12 bits (all modulo 2^64).
  std::int64_t lo = sext12(imm);
  auto hi = static_cast<std::int64_t>(imm - static_cast<std::uint64_t>(lo)) >> 12;
  li(rd, static_cast<std::uint64_t>(hi));
  slli(rd, rd, 12);
  if (lo != 0) addi(rd, rd, static_cast<std::int32_t>(lo));
}

void Assembler::addi(Reg rd, Reg rs, std::int32_t imm12) {
  code_.push_back(i_type(0x13, 0, rd, rs, imm12));
}

void Assembler::add(Reg rd, Reg rs1, Reg rs2) {
  code_.push_back(r(rs2) << 20 | r(rs1) << 15 | r(rd) << 7 | 0x33);
}

void Assembler::slli(Reg rd, Reg rs, unsigned shamt) {
  if (shamt > 63) throw std::invalid_argument("riscv64: shift by " + std::to_string(shamt));
  code_.push_back(shamt << 20 | r(rs) << 15 | 1u << 12 | r(rd) << 7 | 0x13);
}

void Assembler::store(unsigned bytes, Reg src, Reg base, std::int32_t offset) {
  check_imm12(offset);
  auto imm = static_cast<std::uint32_t>(offset) & 0xfff;
  code_.push_back((imm >> 5) << 25 | r(src) << 20 | r(base) << 15 | width_funct3(bytes) << 12 |
                  (imm & 0x1f) << 7 | 0x23);
}

void Assembler::load(unsigned bytes, Reg rd, Reg base, std::int32_t offset) {
  // lbu/lhu/lwu (funct3 4..6) zero-extend; ld (3) is the whole register.
  std::uint32_t f3 = width_funct3(bytes);
  code_.push_back(i_type(0x03, bytes == 8 ? f3 : f3 + 4, rd, base, offset));
}

void Assembler::branch(std::uint32_t funct3, Reg a, Reg b, Label l) {
  if (l.id < 0 || static_cast<std::size_t>(l.id) >= labels_.size()) {
    throw std::invalid_argument("riscv64: unknown label");
  }
  uses_.push_back({code_.size(), l.id, Fix::Branch});
  code_.push_back(r(b) << 20 | r(a) << 15 | funct3 << 12 | 0x63);
}

void Assembler::beq(Reg a, Reg b, Label l) { branch(0, a, b, l); }
void Assembler::bne(Reg a, Reg b, Label l) { branch(1, a, b, l); }
void Assembler::bltu(Reg a, Reg b, Label l) { branch(6, a, b, l); }

void Assembler::j(Label l) {
  if (l.id < 0 || static_cast<std::size_t>(l.id) >= labels_.size()) {
    throw std::invalid_argument("riscv64: unknown label");
  }
  uses_.push_back({code_.size(), l.id, Fix::Jal});
  code_.push_back(0x6f);  // jal x0
}

void Assembler::ecall() { code_.push_back(0x00000073); }
void Assembler::wfi() { code_.push_back(0x10500073); }

void Assembler::csrr(Reg rd, std::uint16_t csr) {
  if (csr > 0xfff) throw std::invalid_argument("riscv64: CSR number above 0xfff");
  code_.push_back(std::uint32_t{csr} << 20 | 2u << 12 | r(rd) << 7 | 0x73);
}

void Assembler::csrw(std::uint16_t csr, Reg rs) {
  if (csr > 0xfff) throw std::invalid_argument("riscv64: CSR number above 0xfff");
  code_.push_back(std::uint32_t{csr} << 20 | r(rs) << 15 | 1u << 12 | 0x73);
}

void Assembler::csrs(std::uint16_t csr, Reg rs) {
  if (csr > 0xfff) throw std::invalid_argument("riscv64: CSR number above 0xfff");
  code_.push_back(std::uint32_t{csr} << 20 | r(rs) << 15 | 2u << 12 | 0x73);
}

void Assembler::word(std::uint32_t raw) { code_.push_back(raw); }

std::vector<std::uint8_t> Assembler::finish() const {
  std::vector<std::uint32_t> code = code_;
  for (const Use& u : uses_) {
    std::int64_t target = labels_[u.label];
    if (target < 0) throw std::invalid_argument("riscv64: branch to an unbound label");
    std::int64_t delta = (target - static_cast<std::int64_t>(u.at)) * 4;  // bytes
    auto d = static_cast<std::uint32_t>(delta);
    if (u.kind == Fix::Branch) {
      if (delta < -4096 || delta > 4094)
        throw std::invalid_argument("riscv64: branch out of range");
      code[u.at] |= ((d >> 12) & 1) << 31 | ((d >> 5) & 0x3f) << 25 | ((d >> 1) & 0xf) << 8 |
                    ((d >> 11) & 1) << 7;
    } else {
      if (delta < -(1 << 20) || delta >= (1 << 20)) {
        throw std::invalid_argument("riscv64: jump out of range");
      }
      code[u.at] |= ((d >> 20) & 1) << 31 | ((d >> 1) & 0x3ff) << 21 | ((d >> 11) & 1) << 20 |
                    ((d >> 12) & 0xff) << 12;
    }
  }
  std::vector<std::uint8_t> bytes;
  bytes.reserve(code.size() * 4);
  for (std::uint32_t w : code) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<std::uint8_t>(w >> (8 * i)));
  }
  return bytes;
}

}  // namespace kvm::riscv64

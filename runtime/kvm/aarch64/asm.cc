#include "kvm/aarch64/asm.h"

#include <stdexcept>
#include <string>

namespace kvm::aarch64 {
namespace {

std::uint32_t r(X reg) { return static_cast<std::uint32_t>(reg); }

void check_reg(X reg) {
  if (r(reg) > 31) throw std::invalid_argument("aarch64: no register x" + std::to_string(r(reg)));
}

void check_imm12(std::uint32_t imm) {
  if (imm > 0xfff)
    throw std::invalid_argument("aarch64: immediate " + std::to_string(imm) + " > 4095");
}

// Size field (bits 31:30) of a load/store of `bytes`, which also scales the offset.
std::uint32_t size_bits(unsigned bytes) {
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
  throw std::invalid_argument("aarch64: load/store of " + std::to_string(bytes) + " bytes");
}

std::uint32_t load_store(unsigned bytes, bool load, X rt, X rn, std::uint32_t offset) {
  check_reg(rt);
  check_reg(rn);
  std::uint32_t sz = size_bits(bytes);
  if (offset % bytes != 0 || offset / bytes > 0xfff) {
    throw std::invalid_argument("aarch64: offset " + std::to_string(offset) + " for a " +
                                std::to_string(bytes) + "-byte access");
  }
  // LDR/STR (immediate, unsigned offset): size 111 0 01 opc imm12 Rn Rt.
  return sz << 30 | 0x39000000u | (load ? 1u : 0u) << 22 | (offset / bytes) << 10 | r(rn) << 5 |
         r(rt);
}

std::uint32_t sys(bool read, SysReg s, X rt) {
  check_reg(rt);
  if (s.op0 < 2 || s.op0 > 3 || s.op1 > 7 || s.crn > 15 || s.crm > 15 || s.op2 > 7) {
    throw std::invalid_argument("aarch64: bad system register encoding");
  }
  return 0xd5000000u | (read ? 1u : 0u) << 21 | std::uint32_t{s.op0} << 19 |
         std::uint32_t{s.op1} << 16 | std::uint32_t{s.crn} << 12 | std::uint32_t{s.crm} << 8 |
         std::uint32_t{s.op2} << 5 | r(rt);
}

}  // namespace

Assembler::Label Assembler::new_label() {
  labels_.push_back(-1);
  return Label{static_cast<int>(labels_.size() - 1)};
}

void Assembler::bind(Label l) {
  if (l.id < 0 || static_cast<std::size_t>(l.id) >= labels_.size()) {
    throw std::invalid_argument("aarch64: unknown label");
  }
  if (labels_[l.id] >= 0) throw std::invalid_argument("aarch64: label bound twice");
  labels_[l.id] = static_cast<std::int64_t>(code_.size());
}

void Assembler::mov(X rd, std::uint64_t imm) {
  check_reg(rd);
  // movz for the lowest chunk (so 0 is one instruction), movk for each other non-zero one.
  code_.push_back(0xd2800000u | (static_cast<std::uint32_t>(imm & 0xffff) << 5) | r(rd));
  for (std::uint32_t hw = 1; hw < 4; ++hw) {
    auto chunk = static_cast<std::uint32_t>((imm >> (16 * hw)) & 0xffff);
    if (chunk != 0) code_.push_back(0xf2800000u | hw << 21 | chunk << 5 | r(rd));
  }
}

void Assembler::mov_reg(X rd, X rn) {
  check_reg(rd);
  check_reg(rn);
  code_.push_back(0xaa0003e0u | r(rn) << 16 | r(rd));
}

void Assembler::add(X rd, X rn, std::uint32_t imm12) {
  check_reg(rd);
  check_reg(rn);
  check_imm12(imm12);
  code_.push_back(0x91000000u | imm12 << 10 | r(rn) << 5 | r(rd));
}

void Assembler::add_reg(X rd, X rn, X rm) {
  check_reg(rd);
  check_reg(rn);
  check_reg(rm);
  code_.push_back(0x8b000000u | r(rm) << 16 | r(rn) << 5 | r(rd));
}

void Assembler::sub(X rd, X rn, std::uint32_t imm12) {
  check_reg(rd);
  check_reg(rn);
  check_imm12(imm12);
  code_.push_back(0xd1000000u | imm12 << 10 | r(rn) << 5 | r(rd));
}

void Assembler::cmp(X rn, std::uint32_t imm12) {
  check_reg(rn);
  check_imm12(imm12);
  code_.push_back(0xf1000000u | imm12 << 10 | r(rn) << 5 | 31u);
}

void Assembler::str(unsigned bytes, X rt, X rn, std::uint32_t offset) {
  code_.push_back(load_store(bytes, false, rt, rn, offset));
}

void Assembler::ldr(unsigned bytes, X rt, X rn, std::uint32_t offset) {
  code_.push_back(load_store(bytes, true, rt, rn, offset));
}

void Assembler::branch(std::uint32_t base, Label l, Fix kind) {
  if (l.id < 0 || static_cast<std::size_t>(l.id) >= labels_.size()) {
    throw std::invalid_argument("aarch64: unknown label");
  }
  uses_.push_back({code_.size(), l.id, kind});
  code_.push_back(base);
}

void Assembler::b(Label l) { branch(0x14000000u, l, Fix::Imm26); }
void Assembler::b(Cond c, Label l) {
  branch(0x54000000u | static_cast<std::uint32_t>(c), l, Fix::Imm19);
}
void Assembler::cbz(X rt, Label l) {
  check_reg(rt);
  branch(0xb4000000u | r(rt), l, Fix::Imm19);
}
void Assembler::cbnz(X rt, Label l) {
  check_reg(rt);
  branch(0xb5000000u | r(rt), l, Fix::Imm19);
}

void Assembler::hvc(std::uint16_t imm) { code_.push_back(0xd4000002u | std::uint32_t{imm} << 5); }
void Assembler::smc(std::uint16_t imm) { code_.push_back(0xd4000003u | std::uint32_t{imm} << 5); }
void Assembler::wfi() { code_.push_back(0xd503207fu); }
void Assembler::nop() { code_.push_back(0xd503201fu); }
void Assembler::isb() { code_.push_back(0xd5033fdfu); }
void Assembler::eret() { code_.push_back(0xd69f03e0u); }
void Assembler::msr(SysReg s, X rt) { code_.push_back(sys(false, s, rt)); }
void Assembler::mrs(X rt, SysReg s) { code_.push_back(sys(true, s, rt)); }

void Assembler::daif_clear(std::uint8_t bits) {
  if (bits > 15) throw std::invalid_argument("aarch64: daifclr takes 4 bits");
  code_.push_back(0xd50340ffu | std::uint32_t{bits} << 8);
}

void Assembler::daif_set(std::uint8_t bits) {
  if (bits > 15) throw std::invalid_argument("aarch64: daifset takes 4 bits");
  code_.push_back(0xd50340dfu | std::uint32_t{bits} << 8);
}

void Assembler::word(std::uint32_t raw) { code_.push_back(raw); }

void Assembler::align_to(std::uint64_t offset) {
  if (offset % 4 != 0 || offset < size()) {
    throw std::invalid_argument("aarch64: cannot pad to " + std::to_string(offset) + " from " +
                                std::to_string(size()));
  }
  while (size() < offset) nop();
}

std::vector<std::uint8_t> Assembler::finish() const {
  std::vector<std::uint32_t> code = code_;
  for (const Use& u : uses_) {
    std::int64_t target = labels_[u.label];
    if (target < 0) throw std::invalid_argument("aarch64: branch to an unbound label");
    std::int64_t delta = target - static_cast<std::int64_t>(u.at);  // in instructions
    int bits = u.kind == Fix::Imm26 ? 26 : 19;
    if (delta >= (std::int64_t{1} << (bits - 1)) || delta < -(std::int64_t{1} << (bits - 1))) {
      throw std::invalid_argument("aarch64: branch out of range");
    }
    auto field = static_cast<std::uint32_t>(delta) & ((1u << bits) - 1);
    code[u.at] |= u.kind == Fix::Imm26 ? field : field << 5;
  }
  std::vector<std::uint8_t> bytes;
  bytes.reserve(code.size() * 4);
  for (std::uint32_t w : code) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<std::uint8_t>(w >> (8 * i)));
  }
  return bytes;
}

}  // namespace kvm::aarch64

// kvm::riscv64::Assembler on the host: each instruction's encoding, checked against the words
// binutils (riscv64-linux-gnu-objdump -M no-aliases) disassembles to the intended instruction,
// and the operand checks. The guests built with it run in tools/qemu/.
#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kvm/riscv64/asm.h"

using namespace kvm::riscv64;

namespace {

std::vector<std::uint32_t> words(const Assembler& a) {
  std::vector<std::uint8_t> b = a.finish();
  std::vector<std::uint32_t> w(b.size() / 4);
  for (std::size_t i = 0; i < w.size(); ++i) {
    for (int k = 0; k < 4; ++k) w[i] |= std::uint32_t{b[4 * i + k]} << (8 * k);
  }
  return w;
}

std::vector<std::uint32_t> li(Reg rd, std::uint64_t v) {
  Assembler a;
  a.li(rd, v);
  return words(a);
}

}  // namespace

TEST_CASE("riscv64 asm: li picks the short sequence for each range") {
  using W = std::vector<std::uint32_t>;
  CHECK(li(Reg::a0, 5) == W{0x00500513});                       // addi a0, zero, 5
  CHECK(li(Reg::a1, ~0ull - 2) == W{0xffd00593});               // addi a1, zero, -3
  CHECK(li(Reg::a2, 0x12345) == W{0x00012637, 0x3456061b});     // lui; addiw
  CHECK(li(Reg::a3, 0x7ffff800) == W{0x800006b7, 0x8006869b});  // lui 0x80000; addiw -2048
  CHECK(li(Reg::a4, 0x53525354) == W{0x53525737, 0x3547071b});
  CHECK(li(Reg::a5, 0x1122334455667788) == W{0x011227b7, 0x3347879b, 0x00c79793, 0x45578793,
                                             0x00c79793, 0x66778793, 0x00c79793, 0x78878793});
  CHECK(li(Reg::a6, 0x80000000) == W{0x00080837, 0x00c81813});          // lui 0x80; slli 12
  CHECK(li(Reg::a7, 0xffffffff00000000) == W{0xfff008b7, 0x00c89893});  // lui; slli 12
}

TEST_CASE("riscv64 asm: arithmetic, loads and stores") {
  Assembler a;
  a.addi(Reg::t0, Reg::t1, -2048);
  a.add(Reg::t0, Reg::t0, Reg::t1);
  a.slli(Reg::t2, Reg::t2, 63);
  a.store(1, Reg::t1, Reg::t0, 0);
  a.store(2, Reg::t1, Reg::t0, -2);
  a.store(4, Reg::t1, Reg::t0, 0x40);
  a.store(8, Reg::t1, Reg::t0, 2047);
  a.load(1, Reg::t2, Reg::t0, 0);    // lbu
  a.load(2, Reg::t2, Reg::t0, 8);    // lhu
  a.load(4, Reg::t2, Reg::t0, -16);  // lwu
  a.load(8, Reg::t2, Reg::t0, 0x100);
  CHECK(words(a) == std::vector<std::uint32_t>{0x80030293, 0x006282b3, 0x03f39393, 0x00628023,
                                               0xfe629f23, 0x0462a023, 0x7e62bfa3, 0x0002c383,
                                               0x0082d383, 0xff02e383, 0x1002b383});
}

TEST_CASE("riscv64 asm: branches, jumps and system instructions") {
  Assembler a;
  auto back = a.new_label(), ahead = a.new_label();
  a.bind(back);
  a.nop();
  a.beq(Reg::a0, Reg::a1, back);
  a.bne(Reg::s2, Reg::zero, back);
  a.bltu(Reg::t0, Reg::t1, back);
  a.j(back);
  a.ecall();
  a.wfi();
  a.csrr(Reg::a3, csr::kSscratch);
  a.csrw(csr::kStvec, Reg::t0);
  a.csrs(csr::kSie, Reg::t1);
  a.j(ahead);
  a.bind(ahead);
  CHECK(words(a) == std::vector<std::uint32_t>{0x00000013, 0xfeb50ee3, 0xfe091ce3, 0xfe62eae3,
                                               0xff1ff06f, 0x00000073, 0x10500073, 0x140026f3,
                                               0x10529073, 0x10432073, 0x0040006f});
}

TEST_CASE("riscv64 asm: bad operands throw when emitted") {
  Assembler a;
  CHECK_THROWS_AS(a.addi(Reg::a0, Reg::a0, 2048), std::invalid_argument);
  CHECK_THROWS_AS(a.store(8, Reg::a0, Reg::a1, -2049), std::invalid_argument);
  CHECK_THROWS_AS(a.load(3, Reg::a0, Reg::a1), std::invalid_argument);
  CHECK_THROWS_AS(a.slli(Reg::a0, Reg::a0, 64), std::invalid_argument);
  CHECK_THROWS_AS(a.csrw(0x1000, Reg::a0), std::invalid_argument);
  auto l = a.new_label();
  a.bind(l);
  CHECK_THROWS_AS(a.bind(l), std::invalid_argument);
  Assembler b;
  b.j(b.new_label());
  CHECK_THROWS_AS(b.finish(), std::invalid_argument);  // never bound
}

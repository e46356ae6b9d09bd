// kvm::aarch64::Assembler on the host: each instruction's encoding, checked against the words
// binutils (aarch64-linux-gnu-objdump) disassembles to the intended instruction, and the
// operand checks. The guests built with it run in tools/qemu/.
#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kvm/aarch64/asm.h"

using namespace kvm::aarch64;

namespace {

std::vector<std::uint32_t> words(const Assembler& a) {
  std::vector<std::uint8_t> b = a.finish();
  std::vector<std::uint32_t> w(b.size() / 4);
  for (std::size_t i = 0; i < w.size(); ++i) {
    for (int k = 0; k < 4; ++k) w[i] |= std::uint32_t{b[4 * i + k]} << (8 * k);
  }
  return w;
}

}  // namespace

TEST_CASE("aarch64 asm: immediates, arithmetic, loads and stores") {
  Assembler a;
  a.mov(x(0), 0x84000008);          // mov x0, #8; movk x0, #0x8400, lsl #16
  a.mov(x(3), 0x1122334455667788);  // movz + 3 movk
  a.mov_reg(x(1), x(2));
  a.add(x(2), x(0), 5);
  a.add_reg(x(0), x(0), x(1));
  a.sub(x(2), x(2), 1);
  a.cmp(x(3), 42);
  a.str(1, x(3), x(4));
  a.str(2, x(3), x(4), 2);
  a.str(4, x(3), x(4), 8);
  a.str(8, x(2), x(1), 0x100);
  a.ldr(1, x(3), x(1));
  a.ldr(2, x(3), x(1), 8);
  a.ldr(4, x(3), x(1), 16);
  a.ldr(8, x(5), x(4), 8);
  CHECK(words(a) == std::vector<std::uint32_t>{0xd2800100, 0xf2b08000, 0xd28ef103, 0xf2aaacc3,
                                               0xf2c66883, 0xf2e22443, 0xaa0203e1, 0x91001402,
                                               0x8b010000, 0xd1000442, 0xf100a87f, 0x39000083,
                                               0x79000483, 0xb9000883, 0xf9008022, 0x39400023,
                                               0x79401023, 0xb9401023, 0xf9400485});
}

TEST_CASE("aarch64 asm: branches to labels behind and ahead") {
  Assembler a;
  auto back = a.new_label(), ahead = a.new_label();
  a.bind(back);
  a.nop();
  a.b(back);
  a.b(Cond::Ne, back);
  a.cbz(x(1), back);
  a.cbnz(x(2), back);
  a.b(ahead);
  a.bind(ahead);
  CHECK(words(a) == std::vector<std::uint32_t>{0xd503201f, 0x17ffffff, 0x54ffffc1, 0xb4ffffa1,
                                               0xb5ffff82, 0x14000001});
}

TEST_CASE("aarch64 asm: system instructions and registers") {
  Assembler a;
  a.hvc(0);
  a.smc(1);
  a.wfi();
  a.isb();
  a.eret();
  a.msr(sysreg::kVbarEl1, x(0));
  a.mrs(x(10), sysreg::kIccIar1El1);
  a.msr(sysreg::kIccEoir1El1, x(10));
  a.msr(sysreg::kIccSreEl1, x(2));
  a.msr(sysreg::kIccPmrEl1, x(2));
  a.msr(sysreg::kIccIgrpen1El1, x(2));
  a.mrs(x(1), sysreg::kMpidrEl1);
  a.daif_clear(2);
  a.daif_set(15);
  CHECK(words(a) == std::vector<std::uint32_t>{0xd4000002, 0xd4000023, 0xd503207f, 0xd5033fdf,
                                               0xd69f03e0, 0xd518c000, 0xd538cc0a, 0xd518cc2a,
                                               0xd518cca2, 0xd5184602, 0xd518cce2, 0xd53800a1,
                                               0xd50342ff, 0xd5034fdf});
}

TEST_CASE("aarch64 asm: align_to pads with nops for vector tables") {
  Assembler a;
  a.wfi();
  a.align_to(0x10);
  CHECK(a.size() == 0x10);
  CHECK(words(a)[3] == 0xd503201f);
  CHECK_THROWS_AS(a.align_to(0x8), std::invalid_argument);  // behind the end
}

TEST_CASE("aarch64 asm: bad operands throw when emitted") {
  Assembler a;
  CHECK_THROWS_AS(a.add(x(0), x(0), 4096), std::invalid_argument);
  CHECK_THROWS_AS(a.str(3, x(0), x(1)), std::invalid_argument);
  CHECK_THROWS_AS(a.str(8, x(0), x(1), 4), std::invalid_argument);  // unaligned offset
  CHECK_THROWS_AS(a.ldr(1, x(0), x(1), 4096), std::invalid_argument);
  CHECK_THROWS_AS(a.mov(x(32), 0), std::invalid_argument);
  CHECK_THROWS_AS(a.msr(SysReg{1, 0, 0, 0, 0}, x(0)), std::invalid_argument);
  CHECK_THROWS_AS(a.daif_clear(16), std::invalid_argument);
  auto l = a.new_label();
  a.bind(l);
  CHECK_THROWS_AS(a.bind(l), std::invalid_argument);
  Assembler b;
  b.b(b.new_label());
  CHECK_THROWS_AS(b.finish(), std::invalid_argument);  // never bound
}

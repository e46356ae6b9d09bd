// Fuzzes kvm::GuestMemory's bounds checks (runtime/kvm/memory.h) with arbitrary guest-physical
// addresses and lengths.
//
// One real VM (/dev/kvm) is created per process with a fixed set of slots: memory at 0, two
// slots adjacent in guest-physical space (a range across their border is in no single region),
// a page ending at 4 GiB, and two pages ending at the highest guest-physical address the host's
// KVM accepts (probed at start-up: 2^64 - 4 KiB if allowed, else the end of the host's
// MAXPHYADDR space). All but the first are borrowed host mappings with PROT_NONE guard pages on
// both sides, so a span reaching past a region's host bytes faults when touched.
//
// Each input is a list of operations (contains, span, host_ptr, read, write, read_obj,
// write_obj) on addresses chosen absolutely or relative to a region's start or end. An
// independent model (128-bit arithmetic over the slot list) says whether [gpa, gpa + len) lies
// inside one region; contains() must agree, span()/read()/... must succeed exactly then (else
// throw kvm::Error EFAULT), and a returned span must be that region's host bytes at the right
// offset, never past its end. Every byte of returned spans is read and rewritten.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "kvm/kvm.h"

using kvm_fuzz::touch_rw;

namespace {

constexpr std::uint64_t kPage = 4096;

struct ModelRegion {
  std::uint64_t base;
  std::uint64_t size;
  std::uint8_t* host;
};

// Host memory with an inaccessible page on each side; never unmapped (lives for the process).
std::uint8_t* guarded(std::uint64_t size) {
  void* p = ::mmap(nullptr, size + 2 * kPage, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) kvm_fuzz::fail("mmap of guarded guest memory failed");
  auto* b = static_cast<std::uint8_t*>(p) + kPage;
  if (::mprotect(b, size, PROT_READ | PROT_WRITE) != 0) kvm_fuzz::fail("mprotect failed");
  return b;
}

struct Fixture {
  kvm::System sys;
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemory mem;
  std::vector<ModelRegion> model;

  void borrow(std::uint64_t gpa, std::uint64_t size) {
    std::uint8_t* h = guarded(size);
    mem.add_borrowed(vm, gpa, {h, static_cast<std::size_t>(size)});
    model.push_back({gpa, size, h});
  }

  Fixture() {
    auto owned = mem.add(vm, 0, 2 * kPage);
    model.push_back({0, 2 * kPage, owned.data()});
    borrow(0x10000, kPage);
    borrow(0x11000, 2 * kPage);          // adjacent to the previous slot
    borrow(0x100000000 - kPage, kPage);  // ends at 4 GiB
    // The highest two pages KVM accepts: first just below 2^64 (a slot ending exactly at 2^64
    // is refused as wrapping, by Vm and kernel alike), then the end of each smaller space.
    std::vector<std::uint64_t> tops = {~std::uint64_t{0} - kPage + 1};
    for (int bits = 63; bits >= 33; --bits) tops.push_back(std::uint64_t{1} << bits);
    for (std::uint64_t top : tops) {
      try {
        borrow(top - 2 * kPage, 2 * kPage);
        std::fprintf(stderr, "memory_fuzzer: highest slot [0x%llx, 0x%llx)\n",
                     static_cast<unsigned long long>(top - 2 * kPage),
                     static_cast<unsigned long long>(top));
        break;
      } catch (const kvm::Error&) {
        // Beyond this host's guest-physical space; try a lower end.
      }
    }
    FUZZ_CHECK(mem.regions().size() == model.size());
    for (std::size_t i = 0; i < model.size(); ++i) {
      const auto& r = mem.regions()[i];
      FUZZ_CHECK(r.guest_phys_addr == model[i].base && r.host.size() == model[i].size &&
                 r.host.data() == model[i].host);
    }
  }

  // The model's answer: is [gpa, gpa + len) inside one region?
  bool inside(std::uint64_t gpa, std::uint64_t len) const {
    using U = unsigned __int128;
    for (const auto& r : model) {
      if (gpa >= r.base && U{gpa} + len <= U{r.base} + r.size) return true;
    }
    return false;
  }

  // A span returned for [gpa, gpa + len) must be the host bytes of a region holding the range.
  void check_span(std::uint64_t gpa, std::uint64_t len, const std::uint8_t* data,
                  std::size_t n) const {
    FUZZ_CHECK(n == len);
    using U = unsigned __int128;
    for (const auto& r : model) {
      if (gpa >= r.base && U{gpa} + len <= U{r.base} + r.size && data == r.host + (gpa - r.base)) {
        return;
      }
    }
    kvm_fuzz::fail("span() returned bytes that are not the range's host memory");
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// An exception from an access the model rejects must be kvm::Error with EFAULT.
template <class F>
void expect_refused(F&& access) {
  try {
    access();
  } catch (const kvm::Error& e) {
    FUZZ_CHECK(e.errno_value() == EFAULT);
    return;
  }
  kvm_fuzz::fail("an access outside every region was accepted");
}

struct Odd {
  std::uint8_t b[3];
};
using Big = std::array<std::uint8_t, kPage + 1>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Fixture& f = fixture();
  const auto& model = f.model;
  kvm_fuzz::Reader in(data, size);
  for (int ops = 0; ops < 64 && !in.empty(); ++ops) {
    auto op = in.get<std::uint8_t>();
    auto& reg = model[in.get<std::uint8_t>() % model.size()];

    std::uint64_t gpa = 0;
    switch ((op >> 3) & 3) {
      case 0:
        gpa = in.get<std::uint64_t>();
        break;
      case 1:
        gpa = reg.base + static_cast<std::uint64_t>(std::int64_t{in.get<std::int16_t>()});
        break;
      case 2:
        gpa =
            reg.base + reg.size + static_cast<std::uint64_t>(std::int64_t{in.get<std::int16_t>()});
        break;
      case 3:
        gpa = ~std::uint64_t{0} - in.get<std::uint16_t>();
        break;
    }
    std::uint64_t len = 0;
    switch ((op >> 5) & 3) {
      case 0:
        len = in.get<std::uint8_t>();
        break;
      case 1:
        len = in.get<std::uint16_t>();
        break;
      case 2:
        len = in.get<std::uint64_t>();
        break;
      case 3:
        len = reg.size + static_cast<std::uint64_t>(std::int64_t{in.get<std::int8_t>()});
        break;
    }
    const bool inside = f.inside(gpa, len);

    switch (op & 7) {
      case 0:
        FUZZ_CHECK(f.mem.contains(gpa, len) == inside);
        break;
      case 1:
      case 2:
        if (inside) {
          std::uint8_t* p;
          std::size_t n;
          if ((op & 7) == 1) {
            auto s = f.mem.span(gpa, len);
            p = s.data();
            n = s.size();
          } else {
            p = f.mem.host_ptr(gpa, len);
            n = static_cast<std::size_t>(len);
          }
          f.check_span(gpa, len, p, n);
          touch_rw(p, n);
        } else {
          expect_refused([&] { (void)f.mem.span(gpa, len); });
          expect_refused([&] { (void)f.mem.host_ptr(gpa, len); });
        }
        break;
      case 3:
      case 4: {
        // Buffers are capped above the largest region, so too-long accesses are still tried.
        std::vector<std::uint8_t> buf(static_cast<std::size_t>(len % (3 * kPage)),
                                      static_cast<std::uint8_t>(op));
        const bool ok = f.inside(gpa, buf.size());
        if (!ok) {
          if ((op & 7) == 3)
            expect_refused([&] { f.mem.read(gpa, buf); });
          else
            expect_refused([&] { f.mem.write(gpa, buf); });
          break;
        }
        if ((op & 7) == 4) {
          for (std::size_t i = 0; i < buf.size(); ++i)
            buf[i] = static_cast<std::uint8_t>(i * 7 + op);
          f.mem.write(gpa, buf);
        }
        std::vector<std::uint8_t> back(buf.size());
        f.mem.read(gpa, back);
        if ((op & 7) == 4) FUZZ_CHECK(back == buf);
        auto s = f.mem.span(gpa, buf.size());
        FUZZ_CHECK(std::equal(back.begin(), back.end(), s.begin(), s.end()));
        break;
      }
      case 5:
        if (f.inside(gpa, 8)) {
          f.mem.write_obj<std::uint64_t>(gpa, len);
          FUZZ_CHECK(f.mem.read_obj<std::uint64_t>(gpa) == len);
        } else {
          expect_refused([&] { (void)f.mem.read_obj<std::uint64_t>(gpa); });
          expect_refused([&] { f.mem.write_obj<std::uint64_t>(gpa, len); });
        }
        break;
      case 6:
        if (f.inside(gpa, sizeof(Odd))) {
          Odd o{{1, 2, 3}};
          f.mem.write_obj(gpa, o);
          FUZZ_CHECK(f.mem.read_obj<Odd>(gpa).b[2] == 3);
        } else {
          expect_refused([&] { (void)f.mem.read_obj<Odd>(gpa); });
        }
        break;
      case 7:
        if (f.inside(gpa, sizeof(Big))) {
          Big b = f.mem.read_obj<Big>(gpa);
          f.mem.write_obj(gpa, b);
        } else {
          expect_refused([&] { (void)f.mem.read_obj<Big>(gpa); });
          expect_refused([&] { f.mem.write_obj(gpa, Big{}); });
        }
        break;
    }
  }
  return 0;
}

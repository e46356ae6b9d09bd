// Small helpers shared by the fuzz harnesses (no libFuzzer or clang-only headers, so the
// harnesses also build with g++ for the corpus tests, see fuzz/BUILD.bazel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kvm_fuzz {

inline volatile std::uint8_t touch_sink;

// Reads every byte of [p, p + n) so that AddressSanitizer checks the whole range.
inline void touch(const void* p, std::size_t n) {
  const volatile std::uint8_t* b = static_cast<const volatile std::uint8_t*>(p);
  std::uint8_t acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc ^= b[i];
  touch_sink = acc;
}

// Reads and rewrites every byte of [p, p + n) (the caller promised the range is writable).
inline void touch_rw(void* p, std::size_t n) {
  volatile std::uint8_t* b = static_cast<volatile std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = b[i];
}

template <class T>
void touch_obj(const T& v) {
  touch(&v, sizeof(T));
}

// A harness found a contract violation that no sanitizer would report: abort, which
// libFuzzer records as a crash (with the input) like any sanitizer finding.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "FUZZ CHECK FAILED: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond)                                                           \
  do {                                                                             \
    if (!(cond)) ::kvm_fuzz::fail(#cond " (" __FILE__ ":" FUZZ_STR(__LINE__) ")"); \
  } while (0)
#define FUZZ_STR2(x) #x
#define FUZZ_STR(x) FUZZ_STR2(x)

// Consumes the fuzz input front to back; reads past the end yield zeros.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::size_t remaining() const { return empty() ? 0 : size_ - pos_; }
  template <class T>
  T get() {
    T v{};
    std::size_t n = remaining() < sizeof(T) ? remaining() : sizeof(T);
    if (n) std::memcpy(&v, data_ + pos_, n);
    pos_ += sizeof(T);
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace kvm_fuzz

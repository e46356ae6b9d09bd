#include "kvm/stats.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kvm/error.h"

namespace kvm {
namespace {

constexpr const char* kOp = "KVM stats fd";

void read_exact(int fd, void* buf, std::size_t n, std::uint64_t off, const char* what) {
  auto* p = static_cast<std::uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_error(kOp, errno, std::string("reading ") + what);
    if (r == 0) throw Error(kOp, EIO, std::string("short read of ") + what);
    p += r;
    n -= static_cast<std::size_t>(r);
    off += static_cast<std::uint64_t>(r);
  }
}

}  // namespace

const Stat* Stats::find(std::string_view name) const noexcept {
  for (const Stat& s : stats) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Stats read_stats(int fd) {
  abi::kvm_stats_header h{};
  read_exact(fd, &h, sizeof h, 0, "the header");
  // Bounds that no real kernel comes near; they keep a corrupt header from exhausting memory.
  if (h.name_size == 0 || h.name_size > 4096 || h.num_desc > 65536) {
    throw Error(kOp, EIO,
                "implausible header: name_size " + std::to_string(h.name_size) + ", " +
                    std::to_string(h.num_desc) + " descriptors");
  }
  Stats out;
  std::string id(h.name_size, '\0');
  read_exact(fd, id.data(), id.size(), h.id_offset, "the id");
  out.id = id.c_str();

  const std::size_t desc_size = sizeof(abi::kvm_stats_desc) + h.name_size;
  std::vector<std::uint8_t> descs(desc_size * h.num_desc);
  if (!descs.empty()) read_exact(fd, descs.data(), descs.size(), h.desc_offset, "the descriptors");
  out.stats.reserve(h.num_desc);
  for (std::uint32_t i = 0; i < h.num_desc; ++i) {
    abi::kvm_stats_desc d;
    std::memcpy(&d, descs.data() + i * desc_size, sizeof d);
    const char* name = reinterpret_cast<const char*>(descs.data() + i * desc_size + sizeof d);
    Stat s;
    s.name.assign(name, strnlen(name, h.name_size));
    s.flags = d.flags;
    s.exponent = d.exponent;
    s.bucket_size = d.bucket_size;
    if (d.size > 4096)
      throw Error(kOp, EIO,
                  "statistic " + s.name + " claims " + std::to_string(d.size) + " values");
    s.values.resize(d.size);
    if (d.size > 0) {
      read_exact(fd, s.values.data(), d.size * sizeof(std::uint64_t),
                 std::uint64_t{h.data_offset} + d.offset, "statistic values");
    }
    out.stats.push_back(std::move(s));
  }
  return out;
}

}  // namespace kvm

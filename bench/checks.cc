#include "checks.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string>

namespace bench {

using kvm::ExitReason;

// Runs `body`, turning failures into SkipWithError (the binary then exits 1).
void guarded(benchmark::State& st, const std::function<void()>& body) {
  try {
    body();
  } catch (const Failure& f) {
    st.SkipWithError(f.what.c_str());
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
  }
}

void raw_ioctl(int fd, unsigned long request, void* arg, const char* name) {
  if (ioctl(fd, request, arg) < 0) fail(std::string(name) + ": " + std::strerror(errno));
}

// ---- the raw side's exit checks, written the obvious way -----------------------------------

void check_raw_exit(const struct kvm_run& r, Program p) {
  switch (p) {
    case Program::OutLoop: {
      if (r.exit_reason != KVM_EXIT_IO || r.io.direction != KVM_EXIT_IO_OUT || r.io.port != kPort) {
        fail("raw: expected out to the port, got exit " + std::to_string(r.exit_reason));
      }
      std::uint8_t value = *(reinterpret_cast<const std::uint8_t*>(&r) + r.io.data_offset);
      benchmark::DoNotOptimize(value);
      return;
    }
    case Program::MmioLoop: {
      std::uint32_t value = 0;
      std::memcpy(&value, r.mmio.data, sizeof value);
      if (r.exit_reason != KVM_EXIT_MMIO || !r.mmio.is_write || r.mmio.phys_addr != kMmioAddr ||
          r.mmio.len != 4 || value != kMmioValue) {
        fail("raw: expected the MMIO write, got exit " + std::to_string(r.exit_reason));
      }
      return;
    }
    case Program::HltLoop:
    case Program::Boot:
      if (r.exit_reason != KVM_EXIT_HLT)
        fail("raw: expected hlt, got exit " + std::to_string(r.exit_reason));
      return;
  }
}

// ---- ours ------------------------------------------------------------------------------------

kvm::Exit run_ours(kvm::Vcpu& vcpu) {
  for (;;) {
    kvm::Exit e = vcpu.run();
    if (!e.interrupted()) return e;
  }
}

void check_our_exit(const kvm::Exit& e, Program p) {
  switch (p) {
    case Program::OutLoop: {
      if (e.reason() != ExitReason::Io) fail("ours: expected out, got " + e.name());
      kvm::IoExit io = e.io();
      if (!io.is_out() || io.port() != kPort) fail("ours: out to the wrong port");
      benchmark::DoNotOptimize(io.value());
      return;
    }
    case Program::MmioLoop: {
      if (e.reason() != ExitReason::Mmio) fail("ours: expected MMIO, got " + e.name());
      kvm::MmioExit m = e.mmio();
      if (!m.is_write() || m.phys_addr() != kMmioAddr || m.len() != 4 || m.value() != kMmioValue) {
        fail("ours: wrong MMIO write");
      }
      return;
    }
    case Program::HltLoop:
    case Program::Boot:
      if (e.reason() != ExitReason::Hlt) fail("ours: expected hlt, got " + e.name());
      return;
  }
}

}  // namespace bench

// Runs kvm-info and checks it against what the runtime reports directly.
#include <catch2/catch.hpp>

#include "tests/run_command.h"

#include <cstdio>
#include <string>

#include "kvm/abi/ioctl_table.h"
#include "kvm/kvm.h"

TEST_CASE(
    "kvm-info prints the API version, named and unnamed capabilities, ungated ioctls and CPUID") {
  testing::CommandResult r = testing::run_command("examples/kvm_info/kvm_info");
  const std::string& out = r.output;
  INFO(out);
  CHECK(r.status == 0);
  CHECK(out.find("KVM API version: 12") != std::string::npos);
  kvm::System sys;
  std::string sync = "KVM_CAP_SYNC_REGS";
  auto pos = out.find(sync);
  REQUIRE(pos != std::string::npos);
  CHECK(std::stoi(out.substr(out.find_first_not_of(' ', pos + sync.size()))) ==
        sys.check_extension(kvm::abi::Cap::SyncRegs));
  // Any capability the kernel reports beyond the headers is listed by number.
  for (std::uint32_t c = 224; c < 300; ++c) {
    if (!kvm::abi::to_string(kvm::abi::Cap{c}).empty()) continue;
    if (sys.check_extension(kvm::abi::Cap{c}) != 0) {
      CHECK(out.find("KVM_CAP_#" + std::to_string(c) + " ") != std::string::npos);
    }
  }
  CHECK(out.find("supported CPUID") != std::string::npos);

  // Every usable ioctl gated by a capability the host reports as 0 is listed with it, and
  // no other.
  unsigned gated = 0, missing = 0;
  for (const auto& io : kvm::abi::all_ioctls) {
    if (!io.available || io.deprecated || !io.capability) continue;
    ++gated;
    std::string line = "  " + std::string(io.name) + " ";
    bool listed = out.find(line) != std::string::npos &&
                  out.find(line) > out.find("ioctls whose capability this host lacks:");
    bool absent = sys.check_extension(io.capability.value) == 0;
    INFO(io.name);
    CHECK(listed == absent);
    missing += absent;
  }
  CHECK(gated > 50);
  CHECK(out.find(std::to_string(missing) + " of " + std::to_string(gated) +
                 " capability-gated ioctls lack their capability here") != std::string::npos);
}

// Runs kvm-info and checks it against what the runtime reports directly.
#include <catch2/catch.hpp>

#include "tests/run_command.h"

#include <cstdio>
#include <string>

#include "kvm/kvm.h"

TEST_CASE("kvm-info prints the API version, named and unnamed capabilities, and CPUID") {
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
}

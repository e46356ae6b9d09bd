// Runs kvm-info and checks it against what the runtime reports directly.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "kvm/kvm.h"

TEST_CASE("kvm-info prints the API version, named and unnamed capabilities, and CPUID") {
  FILE* p = popen("examples/kvm_info/kvm_info 2>&1", "r");
  REQUIRE(p);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int status = pclose(p);
  INFO(out);
  CHECK(WEXITSTATUS(status) == 0);
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

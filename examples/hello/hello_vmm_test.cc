// Runs the example VMM end to end and checks what it printed.
#include <catch2/catch.hpp>

#include "tests/run_command.h"

#include <cstdio>
#include <string>

TEST_CASE("hello_vmm boots its guest and prints what the guest said") {
  testing::CommandResult r = testing::run_command("examples/hello/hello_vmm");
  const std::string& out = r.output;
  INFO(out);
  CHECK(r.status == 0);
  CHECK(out.find("guest said: Hello from a 64-bit guest!\n") != std::string::npos);
  CHECK(out.find("guest computed 1+...+100 = 5050") != std::string::npos);
  CHECK(out.find("guest status register: 0x600d") != std::string::npos);
  CHECK(out.find("guest echoed the device value: 0xc0ffee") != std::string::npos);
  // The verdict examples/README.md promises for every example, as the last line.
  CHECK(out.size() >= 4);
  CHECK(out.substr(out.size() - 4) == "\nOK\n");
}

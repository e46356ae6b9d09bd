// Builds are not enough for examples people copy: run each one as a user would and check what
// it prints and its exit status. The binaries are found relative to the working directory:
// Bazel's runfiles root, or the CMake build directory (same examples/<name>/<name> layout).
#include <catch2/catch.hpp>

#include "tests/run_command.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

using Result = testing::CommandResult;

// Runs `cmd` with a time limit, stdout and stderr together.
Result run(const std::string& cmd) { return testing::run_command("timeout 120 " + cmd); }

bool has(const Result& r, const std::string& text) {
  return r.output.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("irqfd_device: four vCPUs get every completion interrupt from the irqfd device") {
  Result r = run("examples/irqfd_device/irqfd_device");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(has(r, "vm: 4 vCPUs, in-kernel irqchip"));
  for (const char* line : {"vcpu 0: 16 requests, sum of squares 1496 (expected 1496)",
                           "vcpu 1: 16 requests, sum of squares 188696 (expected 188696)",
                           "vcpu 2: 16 requests, sum of squares 695896 (expected 695896)",
                           "vcpu 3: 16 requests, sum of squares 1523096 (expected 1523096)"}) {
    CHECK(has(r, line));
  }
  CHECK(has(r, "device: 64 requests served"));
  CHECK(has(r, "\nOK ("));
}

TEST_CASE("dirty_tracking: pre-copy of a running guest gives an identical copy that resumes") {
  Result r = run("examples/dirty_tracking/dirty_tracking");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(has(r, "round 0: sent all 1024 pages while the guest runs"));
  CHECK(has(r, "round 6: "));
  CHECK(has(r, "stop-and-copy: vCPU stopped at "));
  CHECK(has(r, "destination equals the source"));
  CHECK(has(r, "destination: the guest resumed at "));
  CHECK(has(r, "\nOK ("));
}

TEST_CASE("save_restore: a guest saved into a buffer continues correctly in a fresh VM") {
  Result r = run("examples/save_restore/save_restore");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(has(r, "restored guest: 42 outputs, the 25 after the snapshot match the reference"));
  CHECK(has(r, "xmm1 marker survived the restore"));
  // Either the MSRs travelled and the guest reads its MSR back, or the host refused the MSR
  // ioctls and the example says so explicitly.
  const bool msrs =
      has(r, "KERNEL_GS_BASE after restore: 0x7fab12345678 (expected 0x7fab12345678)");
  const bool no_msrs =
      has(r, "NOT TRANSFERRED: msrs") && has(r, "MSR state could not be transferred");
  CHECK(msrs != no_msrs);
  CHECK(has(r, "\nOK\n"));
}

TEST_CASE("save_restore --no-msrs: what a host without MSR ioctls loses is reported, not hidden") {
  Result r = run("examples/save_restore/save_restore --no-msrs");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(has(r, "saved: NOT TRANSFERRED: msrs: left out by the caller"));
  CHECK(has(r, "the 25 after the snapshot match the reference"));
  CHECK(has(r,
            "MSR state could not be transferred on this host: KERNEL_GS_BASE after restore is 0 "));
  CHECK(has(r, "\nOK\n"));
}

TEST_CASE("save_restore rejects unknown options") {
  Result r = run("examples/save_restore/save_restore --bogus");
  CHECK(r.status == 2);
  CHECK(has(r, "usage: "));
}

TEST_CASE("sandbox: every misbehaving program gets its verdict and the sandbox stays intact") {
  Result r = run("examples/sandbox/sandbox");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(has(r, "well-behaved                     finished     output 500500 ("));
  CHECK(has(r, "spins forever                    timed out    still running after 500 ms ("));
  CHECK(has(r, "floods the VMM with exits        exit budget  64 exits used up; output 0,1,2,3,"));
  CHECK(has(r, "undefined instruction            crashed      triple fault (KVM_EXIT_SHUTDOWN)"));
  CHECK(has(r, "unmaps its own memory            finished     output 511 ("));
  CHECK(has(r,
            "writes where there is no memory  bad access   no memory there: write of 4 bytes "
            "at 0x10000000"));
  CHECK(has(r, "well-behaved, again              finished     output 500500 ("));
  CHECK(has(r, "\nOK (7 programs"));
  // Each reset copies back what the last program dirtied (its code page, the page tables'
  // accessed bits), not the sandbox's 512 pages.
  std::size_t at = r.output.find("well-behaved, again");
  REQUIRE(at != std::string::npos);
  std::size_t pages_at = r.output.find("reset before it: ", at);
  REQUIRE(pages_at != std::string::npos);
  int pages = std::stoi(r.output.substr(pages_at + 17));
  CHECK(pages >= 1);
  CHECK(pages <= 8);
}

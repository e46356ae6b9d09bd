// Resources come back: creating and destroying 10,000 VMs with a vCPU and memory leaves the
// process's fd count and RSS where they started.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "kvm/kvm.h"

namespace {

int open_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d);
  while (::readdir(d)) ++n;
  ::closedir(d);
  return n;
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void one_vm(const kvm::System& sys) {
  kvm::Vm vm = sys.create_vm();
  kvm::GuestMemory mem;
  auto ram = mem.add(vm, 0, 64 * 1024);
  ram[0] = 0xf4;  // hlt, touched so the page is really allocated
  kvm::Vcpu vcpu = vm.create_vcpu(0);
  (void)vcpu.run_struct().exit_reason;
}

}  // namespace

TEST_CASE("10,000 VMs with a vCPU and memory: fds and RSS return to their starting values") {
  kvm::System sys;
  for (int i = 0; i < 200; ++i) one_vm(sys);  // warm up allocator caches
  const int fds = open_fds();
  const long rss = rss_kib();
  for (int i = 0; i < 10000; ++i) one_vm(sys);
  CHECK(open_fds() == fds);
  long grown = rss_kib() - rss;
  INFO("RSS grew by " << grown << " KiB");
#if defined(__SANITIZE_ADDRESS__)
  // ASan's quarantine and shadow memory grow by design; LeakSanitizer checks for leaks instead.
  std::fprintf(stderr, "NOTE: RSS check skipped under AddressSanitizer (grew %ld KiB)\n", grown);
#else
  CHECK(grown < 2048);  // allocator slack, not 10,000 leaked kvm_run pages (40 MiB)
#endif
}

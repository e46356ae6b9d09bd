// What every KVM benchmark checks, shared by kvm_bench.cc, snapshot_bench.cc and
// vcpus_bench.cc: each exit is the one the guest program makes (port, address, value), so a
// wrong fast path fails instead of looking fast.
#pragma once

#include <benchmark/benchmark.h>
#include <linux/kvm.h>

#include <functional>

#include "guest.h"

namespace bench {

// Runs `body`, turning failures into SkipWithError (the binary then exits 1).
void guarded(benchmark::State& st, const std::function<void()>& body);

// ioctl(), failing with the name and errno text.
void raw_ioctl(int fd, unsigned long request, void* arg, const char* name);

// The raw side's check of the exit program `p` makes, written the obvious way.
void check_raw_exit(const struct kvm_run& r, Program p);

// Vcpu::run() until an exit that is not an interruption.
kvm::Exit run_ours(kvm::Vcpu& vcpu);
// Our side's check of the exit program `p` makes, through kvm::Exit.
void check_our_exit(const kvm::Exit& e, Program p);

}  // namespace bench

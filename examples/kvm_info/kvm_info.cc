// kvm-info: what this host's KVM offers. Prints the API version, the vCPU mmap size, every
// capability with its name and value — including capabilities newer than the generated
// headers, which have no name here and are shown as KVM_CAP_#<n> — the ioctls this host
// lacks the capability for, and the supported CPUID.
//
//   bazel run //examples/kvm_info:kvm_info [-- --all]   (--all also lists capabilities = 0)
#include <cstdio>
#include <cstring>
#include <string>

#include "kvm/abi/ioctl_table.h"
#include "kvm/kvm.h"

int main(int argc, char** argv) {
  bool all = argc > 1 && std::strcmp(argv[1], "--all") == 0;
  try {
    kvm::System sys;
    std::printf("KVM API version: %d\n", sys.api_version());
    std::printf("vCPU mmap size:  %zu bytes\n", sys.vcpu_mmap_size());
    std::printf("bindings:        generated from %s (Linux %s) for %s\n", kvm::abi::generated_from,
                kvm::abi::linux_version, kvm::abi::target_arch);

    // Probe past the highest known capability: a newer kernel reports caps we cannot name.
    std::uint32_t highest = 0;
    for (const auto& e : kvm::abi::EnumTraits<kvm::abi::Cap>::entries) {
      highest = std::max(highest, kvm::abi::to_underlying(e.value));
    }
    std::printf("\ncapabilities (value; 0 = absent%s):\n", all ? "" : ", absent ones hidden");
    unsigned present = 0, unnamed = 0;
    for (std::uint32_t c = 0; c <= highest + 64; ++c) {
      kvm::abi::Cap cap{c};
      std::string_view name = kvm::abi::to_string(cap);
      int value = sys.check_extension(cap);
      if (value == 0 && !all) continue;
      if (value == 0 && name.empty()) continue;
      present += value != 0;
      if (name.empty()) ++unnamed;
      std::string label = name.empty()
                              ? "KVM_CAP_#" + std::to_string(c) + " (newer than the headers)"
                              : std::string(name);
      std::printf("  %-52s %d\n", label.c_str(), value);
    }
    std::printf("%u capabilities present, %u of them unnamed in these headers\n", present, unnamed);

    // The ioctls of this arch whose gating capability (from the bindings) reads 0 here.
    std::printf("\nioctls whose capability this host lacks:\n");
    unsigned gated = 0, missing = 0;
    for (const auto& io : kvm::abi::all_ioctls) {
      if (!io.available || io.deprecated || !io.capability) continue;
      ++gated;
      if (sys.check_extension(io.capability.value) != 0) continue;
      ++missing;
      std::printf("  %-36s needs %s\n", io.name,
                  std::string(kvm::abi::to_string(io.capability.value)).c_str());
    }
    std::printf("%u of %u capability-gated ioctls lack their capability here\n", missing, gated);

#if defined(__x86_64__)
    std::printf("\nsupported CPUID (KVM_GET_SUPPORTED_CPUID):\n");
    std::printf("  %-10s %-5s %-5s %-10s %-10s %-10s %-10s\n", "function", "index", "flags", "eax",
                "ebx", "ecx", "edx");
    for (const auto& e : sys.supported_cpuid()) {
      std::printf("  0x%08x %-5u %-5u 0x%08x 0x%08x 0x%08x 0x%08x\n", e.function, e.index, e.flags,
                  e.eax, e.ebx, e.ecx, e.edx);
    }
#endif
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvm-info: %s\n", e.what());
    return 1;
  }
}

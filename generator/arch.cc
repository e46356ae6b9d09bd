#include "generator/arch.h"

#include <stdexcept>

namespace kvmgen {

const std::vector<ArchInfo>& all_arches() {
  // Every arch whose kernel has KVM and whose uapi headers Debian's linux-libc-dev carries.
  // Debian 12 has no LoongArch headers package: that arch always needs --include-dir.
  static const std::vector<ArchInfo> list = {
      {"x86_64",
       "x86_64-linux-gnu",
       {"/usr/include/x86_64-linux-gnu", "/usr/include"},
       "kvm_regs",
       "rax",
       "defined(__x86_64__)"},
      {"aarch64",
       "aarch64-linux-gnu",
       {"/usr/aarch64-linux-gnu/include"},
       "kvm_regs",
       "fp_regs",
       "defined(__aarch64__)"},
      {"riscv64",
       "riscv64-linux-gnu",
       {"/usr/riscv64-linux-gnu/include"},
       "kvm_riscv_core",
       "",
       "defined(__riscv) && __riscv_xlen == 64"},
      {"s390x",
       "s390x-linux-gnu",
       {"/usr/s390x-linux-gnu/include"},
       "kvm_regs",
       "gprs",
       "defined(__s390x__)"},
      {"powerpc64le",
       "powerpc64le-linux-gnu",
       {"/usr/powerpc64le-linux-gnu/include"},
       "kvm_regs",
       "xer",
       "defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)"},
      {"loongarch64", "loongarch64-linux-gnu", {}, "kvm_iocsr_entry", "", "defined(__loongarch64)"},
  };
  return list;
}

std::vector<std::string> known_arches() {
  std::vector<std::string> out;
  for (const auto& a : all_arches()) out.push_back(a.arch);
  return out;
}

const ArchInfo& arch_info(const std::string& arch) {
  for (const auto& a : all_arches()) {
    if (a.arch == arch) return a;
  }
  std::string known;
  for (const auto& a : all_arches()) known += (known.empty() ? "" : ", ") + a.arch;
  throw std::runtime_error("unknown arch '" + arch + "' (known: " + known + ")");
}

}  // namespace kvmgen

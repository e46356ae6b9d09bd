// The arches kvmgen generates for: target triple, where Debian puts their uapi headers, and
// how to recognise their asm/kvm.h.
#pragma once

#include <string>
#include <vector>

namespace kvmgen {

struct ArchInfo {
  std::string arch;                               // x86_64, aarch64, riscv64, ...
  std::string triple;                             // clang target triple
  std::vector<std::string> default_include_dirs;  // where Debian 12 installs this arch's uapi
                                                  // headers; empty when no package does
  // A record (and optionally one of its fields) that only this arch's asm/kvm.h defines: a
  // header tree holds one arch's asm/, and parsing another arch's would give wrong bindings.
  std::string asm_marker_record, asm_marker_field;
  // A preprocessor condition true only when compiling for this arch: the bindings refuse to
  // be used for another target.
  std::string target_condition;
};

// The arches kvmgen knows, in a fixed order; arch_info throws std::runtime_error listing them
// for an unknown name.
const std::vector<ArchInfo>& all_arches();
const ArchInfo& arch_info(const std::string& arch);
std::vector<std::string> known_arches();

}  // namespace kvmgen

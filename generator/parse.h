// Builds the model from a kernel uapi header tree with libclang.
#pragma once

#include <string>
#include <vector>

#include "generator/model.h"
#include "generator/rules.h"

namespace kvmgen {

struct ArchInfo {
  std::string arch;                               // x86_64, aarch64, riscv64
  std::string triple;                             // clang target triple
  std::vector<std::string> default_include_dirs;  // where Debian puts this arch's uapi headers
  // A record (and optionally one of its fields) that only this arch's asm/kvm.h defines: a
  // header tree holds one arch's asm/, and parsing another arch's would give wrong bindings.
  std::string asm_marker_record, asm_marker_field;
};

// The arches kvmgen knows; throws std::runtime_error listing them for an unknown name.
const ArchInfo& arch_info(const std::string& arch);
std::vector<std::string> known_arches();

struct ParseOptions {
  std::string arch = "x86_64";
  std::vector<std::string> include_dirs;  // empty: the arch's defaults
  std::string header = "linux/kvm.h";
  // Extra source appended after the includes (used by tests to add constructs).
  std::string extra_source;
};

// Parses the headers and builds the whole model. Throws std::runtime_error on anything it
// cannot represent faithfully, naming the construct and its location.
Model build_model(const ParseOptions& options, const Rules& rules);

}  // namespace kvmgen

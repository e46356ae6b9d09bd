// Builds the model from a kernel uapi header tree with libclang.
#pragma once

#include <string>
#include <vector>

#include "generator/arch.h"
#include "generator/model.h"
#include "generator/rules.h"

namespace kvmgen {

struct ParseOptions {
  std::string arch = "x86_64";
  std::vector<std::string> include_dirs;  // empty: the arch's defaults
  std::string header = "linux/kvm.h";
  // Where the header tree came from ("Debian linux-libc-dev 7.3.4-1~bpo13+1"), recorded in
  // the output; empty when unknown.
  std::string source;
  // Extra source appended after the includes (used by tests to add constructs).
  std::string extra_source;
};

// Parses the headers and builds the whole model. Throws std::runtime_error on anything it
// cannot represent faithfully, naming the construct and its location.
Model build_model(const ParseOptions& options, const Rules& rules);

}  // namespace kvmgen

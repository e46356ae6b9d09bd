// The arches kvmgen knows (`kvmgen arches`, from generator/arch.cc): the tests that loop over
// every arch ask the generator rather than keep lists of their own, so a new arch is covered
// as soon as kvmgen has it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/run_command.h"

namespace testing {

struct KvmgenArch {
  std::string name;    // x86_64, as in generated/<name>/
  std::string triple;  // x86_64-linux-gnu
};

inline std::vector<KvmgenArch> kvmgen_arches(const std::string& kvmgen) {
  CommandResult r = run_command(kvmgen + " arches");
  if (r.status != 0) throw std::runtime_error(kvmgen + " arches failed: " + r.output);
  std::vector<KvmgenArch> out;
  std::istringstream lines(r.output);
  for (KvmgenArch a; lines >> a.name >> a.triple;) out.push_back(a);
  if (out.empty()) throw std::runtime_error(kvmgen + " arches printed no arch: " + r.output);
  return out;
}

inline std::vector<std::string> kvmgen_arch_names(const std::string& kvmgen) {
  std::vector<std::string> names;
  for (const KvmgenArch& a : kvmgen_arches(kvmgen)) names.push_back(a.name);
  return names;
}

}  // namespace testing

// The macros of linux/kvm.h and asm/kvm.h, and what clang evaluated for each: the raw input of
// every constant and ioctl of the model.
#pragma once

#include <clang-c/Index.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "generator/clang.h"
#include "generator/model.h"

namespace kvmgen {

struct MacroInfo {
  std::string name;
  std::vector<std::string> body;  // tokens after the name
  bool function_like = false;
  std::string file;  // "linux/kvm.h" or "asm/kvm.h"
  std::string path;  // as clang found it
  unsigned line = 0;
};

// The object-like and function-like macros of our two headers, in source order.
std::vector<MacroInfo> collect_macros(const TranslationUnit& tu);

// If the macro is an ioctl request (its expansion, through single-name aliases, is an _IO*
// invocation), returns the invocation's tokens starting with _IO/_IOR/_IOW/_IOWR.
std::optional<std::vector<std::string>> ioctl_invocation(
    const MacroInfo& m, const std::map<std::string, const MacroInfo*>& by_name);

// Splits "_IOW ( KVMIO , 0x46 , struct kvm_x )" into its top-level arguments.
std::vector<std::string> invocation_args(const std::vector<std::string>& toks);

// Throws for a macro that uses _IO-like tokens in a way ioctl_invocation() does not know.
void refuse_unrecognised_ioctl(const MacroInfo& m);

// The macros with their lookup table and, for each, its _IO* invocation if it is an ioctl.
struct MacroSet {
  std::vector<MacroInfo> list;
  std::map<std::string, const MacroInfo*> by_name;
  std::vector<std::optional<std::vector<std::string>>> invocations;  // parallel to list
};

struct EnumConst {
  std::string name, tag, file;  // tag: empty for an anonymous enum
  unsigned line;
  IntValue value;
};

// What the probe translation unit evaluated (valid while that unit lives).
struct Evaluated {
  std::map<std::size_t, IntValue> values;   // macro index -> its integer value
  std::map<std::size_t, CXType> arg_types;  // ioctl macro index -> its argument type
  std::vector<CXCursor> record_defs;        // named records of our headers, in source order
  std::vector<EnumConst> enum_consts;
};

}  // namespace kvmgen

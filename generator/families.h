// The model's integer constants and the typed families they form (families.rules).
#pragma once

#include "generator/macros.h"
#include "generator/model.h"
#include "generator/rules.h"

namespace kvmgen {

// Adds every macro with an integer value that is not an ioctl, then the C enumerators.
void add_constants(Model& model, const MacroSet& macros, const Evaluated& evaluated);

// Puts each constant into the family of its most specific rule, names the members, picks each
// family's underlying type, and refuses what would be wrong in C++ (two members or two plain
// constants of one C++ name, an enum family with a flag or a second member of one value).
void assign_families(Model& model, const Rules& rules);

}  // namespace kvmgen

// The model's ioctls: request number, direction, argument type, scopes and gating capability of
// every _IO* macro, from the macros, clang's evaluation and the rules.
#pragma once

#include "generator/arch.h"
#include "generator/macros.h"
#include "generator/model.h"
#include "generator/records.h"
#include "generator/rules.h"

namespace kvmgen {

// Adds an Ioctl for every ioctl macro (records of their argument types go through `records`),
// then notes the rules lines these headers have no ioctl for.
void add_ioctls(Model& model, const ArchInfo& arch, const MacroSet& macros,
                const Evaluated& evaluated, RecordBuilder& records, const Rules& rules);

}  // namespace kvmgen

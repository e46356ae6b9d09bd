// The model as JSON (generated/<arch>/kvm_api.json): the one place that knows its schema on the
// writing side. `kvmgen diff`, the reference manual and the tests read it back by these keys.
#pragma once

#include <string>

#include "generator/model.h"

namespace kvmgen {

// The whole model: families with their members, plain constants, ioctls, records with every
// field, and the notes. Deterministic: the same model gives the same text.
std::string model_to_json(const Model& model);

}  // namespace kvmgen

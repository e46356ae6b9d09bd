// Renders the model through the Mustache templates of templates/ (C++ headers and the
// cross-check test; all their text lives in the templates) and adds the model as JSON
// (kvm_api.json, from generator/model_json.cc).
#pragma once

#include <map>
#include <string>

#include "generator/model.h"

namespace kvmgen {

// Output path (relative to the arch's output directory) -> contents.
using Rendered = std::map<std::string, std::string>;

// Renders every `*.mustache` under `template_dir` (files whose name starts with `_` are
// partials, available to the others by their stem). Throws std::runtime_error naming the
// template on a template error.
Rendered render_all(const Model& model, const std::string& template_dir);

}  // namespace kvmgen

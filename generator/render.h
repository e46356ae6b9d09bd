// Renders the model through the Mustache templates of templates/: C++ headers, the JSON model
// and the cross-check test. All output text lives in the templates.
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

// Writes rendered files into generated/<arch>/, or checks that they are there unchanged.
#pragma once

#include <string>

#include "generator/render.h"

namespace kvmgen {

enum class OutputMode { Write, Check };

// Write: creates or rewrites the files that differ and deletes files kvmgen no longer
// produces. Check: changes nothing, prints "stale:" (with a diff), "missing:" and "not produced
// by kvmgen:" lines. Returns the number of files that differ from `files`.
int sync_output(const Rendered& files, const std::string& dir, OutputMode mode);

}  // namespace kvmgen

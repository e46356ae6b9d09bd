// `kvmgen diff`: what changed between two models (the kvm_api.json of two generator runs), so
// that someone regenerating for new kernel headers sees what will break before building.
#pragma once

#include <string>
#include <vector>

namespace kvmgen {

struct ApiChange {
  std::string area;    // a family ("Cap", "ExitReason"), "constant", "ioctl" or "record"
  std::string name;    // KVM_CAP_X, KVM_GET_REGS, kvm_regs, kvm_run.io.port
  std::string change;  // added, removed, renumbered, moved, resized, reshaped, ...
  std::string old_value, new_value;  // as text; empty where the item does not exist
  std::string detail;                // a readable explanation
  bool breaking = false;             // code built against OLD may fail or misbehave on NEW
};

struct ApiSide {
  std::string label;  // the path given
  std::string arch, linux_version;
};

struct ApiDiff {
  ApiSide old_side, new_side;
  std::vector<ApiChange> changes;  // families, constants, ioctls, records; each in model order
  // Advice for whoever regenerates, e.g. new plain constants that look like a new family and
  // want a rule in generator/families.rules.
  std::vector<std::string> hints;
  std::size_t breaking() const;
};

// Compares two kvm_api.json documents. Throws std::runtime_error naming the side (and what is
// missing or malformed) when a document is not a kvm_api.json.
ApiDiff diff_api(const std::string& old_json, const std::string& new_json,
                 const std::string& old_label, const std::string& new_label);

// Reads a kvm_api.json, or the kvm_api.json inside a directory such as generated/x86_64.
// Throws std::runtime_error naming the path when there is none.
std::string read_api_json(const std::string& path);

// The diff as readable text (one line per change) and as a JSON document.
std::string diff_to_text(const ApiDiff& diff);
std::string diff_to_json(const ApiDiff& diff);

}  // namespace kvmgen

// The rule files that steer kvmgen: how constants group into families, which ioctls work on
// other fds than their header section says, and which capability gates an ioctl whose header
// comment does not say. All are data, documented in place.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "generator/model.h"

namespace kvmgen {

struct FamilyRule {
  std::string family;  // C++ type name
  FamilyKind kind = FamilyKind::Enum;
  std::string match;    // "prefix", "suffix", "c-enum" or "name"
  std::string pattern;  // the prefix, suffix or C enum tag
  unsigned line = 0;    // in the rules file, for messages
};

struct ScopeException {
  unsigned scopes = 0;
  std::string why;
};

struct CapRule {
  std::string cap;  // KVM_CAP_* name; empty for "none" (not gated, whatever a comment suggests)
  // Where the capability depends on the kind of fd ("vcpu:KVM_CAP_X vm:KVM_CAP_Y"): one scope
  // bit and its cap (empty for none) per pair, in the rule's order; `cap` is the first one's.
  std::vector<std::pair<unsigned, std::string>> by_scope;
  std::string why;  // the rule's comment (where api.rst says so)
};

struct Rules {
  std::vector<FamilyRule> families;
  std::map<std::string, ScopeException> scopes;  // ioctl name -> its real scopes
  std::map<std::string, CapRule> caps;           // ioctl name -> the capability gating it
};

// Reads `families.rules`, `ioctl_scopes.rules` and `ioctl_caps.rules` from `dir`. Throws
// std::runtime_error naming the file and line of anything malformed.
Rules load_rules(const std::string& dir);

// "system,vm" -> kSystem|kVm; throws on an unknown scope word.
unsigned parse_scopes(const std::string& list);

}  // namespace kvmgen

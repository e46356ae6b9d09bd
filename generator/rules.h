// The two rule files that steer kvmgen: how constants group into families, and which ioctls
// work on other fds than their header section says. Both are data, documented in place.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "generator/model.h"

namespace kvmgen {

struct FamilyRule {
  std::string family;  // C++ type name
  FamilyKind kind = FamilyKind::Enum;
  std::string match;    // "prefix", "suffix" or "c-enum"
  std::string pattern;  // the prefix, suffix or C enum tag
  unsigned line = 0;    // in the rules file, for messages
};

struct ScopeException {
  unsigned scopes = 0;
  std::string why;
};

struct Rules {
  std::vector<FamilyRule> families;
  std::map<std::string, ScopeException> scopes;  // ioctl name -> its real scopes
};

// Reads `families.rules` and `ioctl_scopes.rules` from `dir`. Throws std::runtime_error naming
// the file and line of anything malformed.
Rules load_rules(const std::string& dir);

// "system,vm" -> kSystem|kVm; throws on an unknown scope word.
unsigned parse_scopes(const std::string& list);

}  // namespace kvmgen

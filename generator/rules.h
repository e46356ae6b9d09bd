// The rule files that steer kvmgen: how constants group into families, which ioctls work on
// which fds (all of them), and which capability gates an ioctl whose header
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
  std::string strip;    // c-enum only: the enumerators' common prefix, left out of C++ names
  unsigned line = 0;    // in the rules file, for messages
};

// One line of ioctl_scopes.rules: the kinds of fd an ioctl works on.
struct ScopeRule {
  unsigned scopes = 0;
  bool header_differs = false;  // the header files it under a section of another kind of fd
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
  std::map<std::string, ScopeRule> scopes;  // ioctl name -> its scopes, for every ioctl
  std::map<std::string, CapRule> caps;      // ioctl name -> the capability gating it
};

// Reads `families.rules`, `ioctl_scopes.rules` and `ioctl_caps.rules` from `dir`. Throws
// std::runtime_error naming the file and line of anything malformed.
Rules load_rules(const std::string& dir);

// The same from the first directory, then overlays: each later directory may hold any of the
// three files, whose lines add to or replace those read before (rules for ioctls of a patched
// kernel, or for test fixtures, without editing the project's tables).
Rules load_rules(const std::vector<std::string>& dirs);

// "system,vm" -> kSystem|kVm; throws on an unknown scope word.
unsigned parse_scopes(const std::string& list);

}  // namespace kvmgen

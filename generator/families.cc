#include "generator/families.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "generator/naming.h"

namespace kvmgen {
namespace {

// An enum family holds one value per member: a second member with the same value is a flag or
// a field helper that a prefix rule swept in (KVM_EXIT_HYPERCALL_LONG_MODE = 1 beside
// KVM_EXIT_EXCEPTION = 1), unless the header itself defines it as an alias of the first.
void check_enum_family(const Family& f, const std::vector<Constant>& constants) {
  if (f.kind != FamilyKind::Enum) return;
  std::map<std::uint64_t, const Constant*> by_value;
  for (std::size_t i : f.members) {
    const Constant& c = constants[i];
    std::string where = c.file + ":" + std::to_string(c.line) + ": " + c.name;
    if (c.name.find("_FLAG_") != std::string::npos) {  // X_FLAG_Y: a flag named as one
      throw std::runtime_error(where + " is a flag, but families.rules puts it in the enum " +
                               f.name + ": give its prefix a flags family (or a plain rule)");
    }
    auto [it, fresh] = by_value.emplace(c.value.bits, &c);
    const Constant& first = *it->second;
    if (fresh || c.alias_of == first.name || first.alias_of == c.name) continue;
    throw std::runtime_error(where + " has the value " + c.value.to_string() + " of " + first.name +
                             " in the enum " + f.name +
                             ": it belongs to another "
                             "family; give it one in families.rules (a flags or plain rule)");
  }
}

// The most specific rule for a constant: its C enum, then its own name, then the longest prefix
// or suffix. Null when no rule matches.
const FamilyRule* best_rule(const Constant& c, const Rules& rules) {
  const FamilyRule* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& r : rules.families) {
    std::size_t len = 0;
    if (r.match == "c-enum") {
      if (c.from_c_enum && c.family == r.pattern) len = 1000;  // the C enum says it all
    } else if (r.match == "name") {
      if (c.name == r.pattern) len = 999;  // one constant, named outright
    } else if (c.name.size() > r.pattern.size()) {
      if (r.match == "prefix" && starts_with(c.name, r.pattern)) len = r.pattern.size();
      if (r.match == "suffix" && ends_with(c.name, r.pattern)) len = r.pattern.size();
    }
    if (len > best_len) {
      best = &r;
      best_len = len;
    }
  }
  return best;
}

// The enumerator name of a constant under its rule.
std::string member_name(const Constant& c, const FamilyRule& rule) {
  std::string stem = c.name;
  if (rule.match == "prefix") stem = c.name.substr(rule.pattern.size());
  if (rule.match == "suffix") stem = c.name.substr(0, c.name.size() - rule.pattern.size());
  if (!rule.strip.empty() && starts_with(stem, rule.strip)) {
    return camel_case(stem.substr(rule.strip.size()));
  }
  // A C enum's or a named constant's whole name is the stem; drop just the KVM_ prefix.
  return rule.match == "c-enum" || rule.match == "name" ? camel_case_kvm(stem) : camel_case(stem);
}

// The smallest fixed-width type holding every member; unique C++ member names.
void finish_family(Family& f, const std::vector<Constant>& constants,
                   std::vector<std::string>& notes) {
  bool negative = false;
  std::uint64_t max = 0;
  std::int64_t min = 0;
  std::set<std::string> names;
  for (std::size_t i : f.members) {
    const Constant& c = constants[i];
    if (!names.insert(c.cpp_name).second) {
      throw std::runtime_error("family " + f.name + ": two members map to the C++ name " +
                               c.cpp_name + " (one is " + c.name + ")");
    }
    if (c.value.negative()) {
      negative = true;
      min = std::min(min, static_cast<std::int64_t>(c.value.bits));
    } else {
      max = std::max(max, c.value.bits);
    }
  }
  if (negative) {
    f.underlying = (min >= INT32_MIN && max <= INT32_MAX) ? "std::int32_t" : "std::int64_t";
  } else {
    f.underlying = max <= UINT32_MAX ? "std::uint32_t" : "std::uint64_t";
  }
  if (f.members.empty()) notes.push_back("family " + f.name + " has no members in this header");
}

}  // namespace

void add_constants(Model& model, const MacroSet& macros, const Evaluated& evaluated) {
  std::set<std::string> enum_names;
  for (const auto& e : evaluated.enum_consts) enum_names.insert(e.name);
  for (std::size_t i = 0; i < macros.list.size(); ++i) {
    const MacroInfo& m = macros.list[i];
    if (macros.invocations[i]) continue;
    auto v = evaluated.values.find(i);
    if (v == evaluated.values.end()) continue;
    if (enum_names.count(m.name)) continue;  // "#define X X" aliases of enumerators
    Constant c;
    c.name = m.name;
    c.value = v->second;
    c.file = m.file;
    c.line = m.line;
    if (m.body.size() == 1 && macros.by_name.count(m.body[0])) c.alias_of = m.body[0];
    model.constants.push_back(c);
  }
  for (const auto& e : evaluated.enum_consts) {
    Constant c;
    c.name = e.name;
    c.value = e.value;
    c.file = e.file;
    c.line = e.line;
    c.from_c_enum = true;
    c.family = e.tag;  // provisional: the C tag, replaced by the family assignment below
    model.constants.push_back(c);
  }
}

void assign_families(Model& model, const Rules& rules) {
  std::map<std::string, std::size_t> family_index;
  for (const auto& r : rules.families) {
    if (r.kind == FamilyKind::Plain) continue;
    if (!family_index.count(r.family)) {
      Family f;
      f.name = r.family;
      f.kind = r.kind;
      family_index[r.family] = model.families.size();
      model.families.push_back(f);
    }
    Family& f = model.families[family_index[r.family]];
    f.rule += (f.rule.empty() ? "" : "; ") + r.match + " " + r.pattern;
  }
  for (std::size_t i = 0; i < model.constants.size(); ++i) {
    Constant& c = model.constants[i];
    const FamilyRule* best = best_rule(c, rules);
    if (!best || best->kind == FamilyKind::Plain) {
      c.family.clear();
      c.cpp_name = camel_case_kvm(c.name);
      continue;
    }
    Family& f = model.families[family_index[best->family]];
    c.family = f.name;
    c.cpp_name = member_name(c, *best);
    f.members.push_back(i);
  }
  for (Family& f : model.families) {
    finish_family(f, model.constants, model.notes);
    check_enum_family(f, model.constants);
  }
  std::set<std::string> plain;
  for (const Constant& c : model.constants) {
    if (c.family.empty() && !plain.insert(c.cpp_name).second) {
      throw std::runtime_error("two plain constants map to the C++ name " + c.cpp_name +
                               " (one is " + c.name + ")");
    }
  }
}

}  // namespace kvmgen

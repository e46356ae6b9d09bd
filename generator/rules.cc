#include "generator/rules.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvmgen {
namespace {

// One line of a rules file: its words before any '#', and the comment after it.
struct RuleLine {
  unsigned number = 0;
  std::vector<std::string> words;
  std::string why;
};

// Calls `fn` for every line of `path` that has words. An exception from `fn` (a
// std::runtime_error saying what is wrong) comes back prefixed with "path:line: ".
template <class Fn>
void for_each_rule(const std::string& path, Fn fn) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open rules file " + path);
  std::string text;
  RuleLine line;
  while (std::getline(in, text)) {
    ++line.number;
    auto hash = text.find('#');
    std::size_t why =
        hash == std::string::npos ? std::string::npos : text.find_first_not_of(' ', hash + 1);
    line.why = why == std::string::npos ? "" : text.substr(why);
    std::stringstream ss(hash == std::string::npos ? text : text.substr(0, hash));
    line.words.clear();
    for (std::string w; ss >> w;) line.words.push_back(w);
    if (line.words.empty()) continue;
    try {
      fn(line);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path + ":" + std::to_string(line.number) + ": " + e.what());
    }
  }
}

}  // namespace

unsigned parse_scopes(const std::string& list) {
  unsigned scopes = 0;
  std::stringstream ss(list);
  std::string word;
  while (std::getline(ss, word, ',')) {
    auto n = std::find_if(std::begin(kScopeNames), std::end(kScopeNames),
                          [&](const ScopeName& n) { return word == n.word; });
    if (n == std::end(kScopeNames)) {
      throw std::runtime_error("unknown scope '" + word +
                               "' (expected system, vm, vcpu or device)");
    }
    scopes |= n->bit;
  }
  return scopes;
}

namespace {

// Reads the rules files of `dir` into `rules`. An overlay directory (one after the first) may
// lack any of the files, and its lines add to or replace the ones read before.
void read_rules_dir(Rules& rules, const std::string& dir, bool overlay) {
  auto file = [&](const char* name) -> std::string {
    std::string path = dir + "/" + name;
    if (overlay && !std::ifstream(path)) return "";
    return path;
  };
  auto each = [&](const char* name, auto fn) {
    std::string path = file(name);
    if (!path.empty()) for_each_rule(path, fn);
  };
  each("families.rules", [&](const RuleLine& l) {
    bool has_strip = l.words.size() == 5 && l.words[4].compare(0, 6, "strip=") == 0;
    if (l.words.size() != 4 && !has_strip) {
      throw std::runtime_error(
          "expected '<Family> <enum|flags|plain> <prefix|suffix|c-enum|name> <pattern> "
          "[strip=PREFIX]'");
    }
    FamilyRule r;
    if (has_strip) r.strip = l.words[4].substr(6);
    r.family = l.words[0];
    const std::string& kind = l.words[1];
    r.match = l.words[2];
    r.pattern = l.words[3];
    if (kind == "enum")
      r.kind = FamilyKind::Enum;
    else if (kind == "flags")
      r.kind = FamilyKind::Flags;
    else if (kind == "plain")
      r.kind = FamilyKind::Plain;
    else
      throw std::runtime_error("unknown kind '" + kind + "'");
    if (r.match != "prefix" && r.match != "suffix" && r.match != "c-enum" && r.match != "name")
      throw std::runtime_error("unknown match '" + r.match + "'");
    if (!r.strip.empty() && r.match != "c-enum") {
      throw std::runtime_error(
          "strip= goes with c-enum rules only (a prefix rule strips its "
          "prefix already)");
    }
    r.line = l.number;
    rules.families.push_back(r);
  });
  std::set<std::string> scoped_here;
  each("ioctl_scopes.rules", [&](const RuleLine& l) {
    bool differs = l.words.size() == 3 && l.words[2] == "header-differs";
    if (l.words.size() != 2 && !differs) {
      throw std::runtime_error("expected '<IOCTL> <scopes> [header-differs]'");
    }
    if (!scoped_here.insert(l.words[0]).second) {
      throw std::runtime_error(l.words[0] + " has two lines");
    }
    rules.scopes.insert_or_assign(l.words[0], ScopeRule{parse_scopes(l.words[1]), differs, l.why});
  });
  std::set<std::string> capped_here;
  each("ioctl_caps.rules", [&](const RuleLine& l) {
    const char* expected =
        "expected '<IOCTL> <KVM_CAP_NAME or none>' or '<IOCTL> <scope>:<KVM_CAP_NAME or none>...'";
    auto cap_word = [&](const std::string& w) {
      if (w != "none" && w.rfind("KVM_CAP_", 0) != 0) throw std::runtime_error(expected);
      return w == "none" ? std::string() : w;
    };
    if (l.words.size() < 2) throw std::runtime_error(expected);
    CapRule rule;
    rule.why = l.why;
    if (l.words.size() == 2 && l.words[1].find(':') == std::string::npos) {
      rule.cap = cap_word(l.words[1]);
    } else {
      unsigned seen = 0;
      for (std::size_t i = 1; i < l.words.size(); ++i) {
        auto colon = l.words[i].find(':');
        if (colon == std::string::npos) throw std::runtime_error(expected);
        unsigned scope = parse_scopes(l.words[i].substr(0, colon));
        if (scope & (scope - 1)) throw std::runtime_error("one scope per pair: " + l.words[i]);
        if (seen & scope) throw std::runtime_error("scope given twice: " + l.words[i]);
        seen |= scope;
        rule.by_scope.emplace_back(scope, cap_word(l.words[i].substr(colon + 1)));
      }
      rule.cap = rule.by_scope.front().second;
    }
    if (!capped_here.insert(l.words[0]).second)
      throw std::runtime_error(l.words[0] + " is listed twice");
    rules.caps.insert_or_assign(l.words[0], std::move(rule));
  });
}

}  // namespace

Rules load_rules(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw std::runtime_error("no rules directory given");
  Rules rules;
  for (std::size_t i = 0; i < dirs.size(); ++i) read_rules_dir(rules, dirs[i], i > 0);
  return rules;
}

Rules load_rules(const std::string& dir) { return load_rules(std::vector<std::string>{dir}); }

}  // namespace kvmgen

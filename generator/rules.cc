#include "generator/rules.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kvmgen {
namespace {

std::string strip_comment(const std::string& line) {
  auto hash = line.find('#');
  return hash == std::string::npos ? line : line.substr(0, hash);
}

std::ifstream open_rules(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open rules file " + path);
  return in;
}

}  // namespace

unsigned parse_scopes(const std::string& list) {
  unsigned scopes = 0;
  std::stringstream ss(list);
  std::string word;
  while (std::getline(ss, word, ',')) {
    if (word == "system")
      scopes |= kSystem;
    else if (word == "vm")
      scopes |= kVm;
    else if (word == "vcpu")
      scopes |= kVcpu;
    else if (word == "device")
      scopes |= kDevice;
    else
      throw std::runtime_error("unknown scope '" + word +
                               "' (expected system, vm, vcpu or device)");
  }
  return scopes;
}

Rules load_rules(const std::string& dir) {
  Rules rules;
  {
    const std::string path = dir + "/families.rules";
    auto in = open_rules(path);
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
      ++n;
      std::stringstream ss(strip_comment(line));
      FamilyRule r;
      std::string kind;
      if (!(ss >> r.family)) continue;
      if (!(ss >> kind >> r.match >> r.pattern)) {
        throw std::runtime_error(
            path + ":" + std::to_string(n) +
            ": expected '<Family> <enum|flags|plain> <prefix|suffix|c-enum|name> <pattern>'");
      }
      if (kind == "enum")
        r.kind = FamilyKind::Enum;
      else if (kind == "flags")
        r.kind = FamilyKind::Flags;
      else if (kind == "plain")
        r.kind = FamilyKind::Plain;
      else
        throw std::runtime_error(path + ":" + std::to_string(n) + ": unknown kind '" + kind + "'");
      if (r.match != "prefix" && r.match != "suffix" && r.match != "c-enum" && r.match != "name") {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": unknown match '" + r.match +
                                 "'");
      }
      r.line = n;
      rules.families.push_back(r);
    }
  }
  {
    const std::string path = dir + "/ioctl_scopes.rules";
    auto in = open_rules(path);
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
      ++n;
      auto hash = line.find('#');
      std::string why = hash == std::string::npos ? "" : line.substr(hash + 1);
      while (!why.empty() && why.front() == ' ') why.erase(0, 1);
      std::stringstream ss(strip_comment(line));
      std::string name, scopes;
      if (!(ss >> name)) continue;
      if (!(ss >> scopes)) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": expected '<IOCTL> <scopes>'");
      }
      try {
        rules.scopes[name] = ScopeException{parse_scopes(scopes), why};
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": " + e.what());
      }
    }
  }
  {
    const std::string path = dir + "/ioctl_caps.rules";
    auto in = open_rules(path);
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
      ++n;
      auto hash = line.find('#');
      std::string why = hash == std::string::npos ? "" : line.substr(hash + 1);
      while (!why.empty() && why.front() == ' ') why.erase(0, 1);
      std::stringstream ss(strip_comment(line));
      std::string name, cap, extra;
      if (!(ss >> name)) continue;
      if (!(ss >> cap) || (ss >> extra) || (cap != "none" && cap.rfind("KVM_CAP_", 0) != 0)) {
        throw std::runtime_error(path + ":" + std::to_string(n) +
                                 ": expected '<IOCTL> <KVM_CAP_NAME or none>'");
      }
      if (cap == "none") cap.clear();
      if (!rules.caps.emplace(name, CapRule{cap, why}).second) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": " + name + " is listed twice");
      }
    }
  }
  return rules;
}

}  // namespace kvmgen

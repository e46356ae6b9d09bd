#include "generator/ioctls.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "generator/header_text.h"
#include "generator/naming.h"

namespace kvmgen {
namespace {

// "system,vm", as the rules file writes it.
std::string scope_list(unsigned scopes) {
  std::string out;
  for (const std::string& w : scope_words(scopes)) out += (out.empty() ? "" : ",") + w;
  return out;
}

// The table gives the scopes; the header section the ioctl sits in, if any, must agree.
void assign_scopes(Ioctl& io, const MacroInfo& m, const Rules& rules, unsigned section) {
  std::string at = m.path + ":" + std::to_string(m.line) + ": ioctl " + m.name;
  auto rule = rules.scopes.find(m.name);
  if (rule == rules.scopes.end()) {
    throw std::runtime_error(at +
                             " has no known scope: add a line for it to "
                             "generator/ioctl_scopes.rules (the \"Type:\" line of its api.rst "
                             "section says which fds it works on)");
  }
  io.scopes = rule->second.scopes;
  io.scope_source = "ioctl_scopes.rules";
  if (!rule->second.why.empty()) io.scope_source += ": " + rule->second.why;
  if (!section) return;
  bool agrees = (section & io.scopes) != 0;
  if (!agrees && !rule->second.header_differs) {
    throw std::runtime_error(at + " sits among the header's " + scope_list(section) +
                             " ioctls, but ioctl_scopes.rules gives it " + scope_list(io.scopes) +
                             ": correct the table, or mark its line "
                             "header-differs if the header files it wrongly");
  }
  io.scope_source +=
      agrees ? " (the header section agrees)"
             : " (the header files it among " + scope_list(section) + " ioctls, wrongly)";
}

// The header's text as kvmgen reads it beside clang: lines, sections and cap comments, once
// per file.
struct HeaderText {
  std::vector<std::string> lines;
  std::vector<Section> sections;
  std::map<unsigned, std::string> cap_comments;
};

const HeaderText& text_of(std::map<std::string, HeaderText>& cache, const std::string& path) {
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  HeaderText t;
  t.lines = read_lines(path);
  t.sections = find_sections(t.lines);
  t.cap_comments = find_cap_comments(t.lines);
  return cache.emplace(path, std::move(t)).first->second;
}

std::string at(const MacroInfo& m) {
  return m.path + ":" + std::to_string(m.line) + ": ioctl " + m.name;
}

Direction direction_of(const std::string& io_macro) {
  return io_macro == "_IO"    ? Direction::None
         : io_macro == "_IOR" ? Direction::Read
         : io_macro == "_IOW" ? Direction::Write
                              : Direction::ReadWrite;
}

// The argument type: its C spelling, size and C++ type, or why the ioctl is unavailable.
void set_argument(Ioctl& io, const std::string& c_type, const CXType* type, const ArchInfo& arch,
                  const MacroInfo& m, RecordBuilder& records) {
  io.arg_c_type = c_type;
  long long size = type ? clang_Type_getSizeOf(*type) : -1;
  if (size < 0) {
    io.available = false;
    io.unavailable_reason = "argument type '" + c_type + "' is not defined for " + arch.arch;
    return;
  }
  io.arg_size = static_cast<std::uint64_t>(size);
  CXType canon = clang_getCanonicalType(*type);
  if (canon.kind == CXType_Record) {
    CXCursor decl = clang_getTypeDeclaration(canon);
    io.arg_cpp_type = str(clang_getCursorSpelling(decl));
    records.add_dependency(decl, at(m));
  } else {
    io.arg_cpp_type = scalar_type(canon, m.name);
  }
}

// The gating capability: the header's "Available with" comment, overridden by the caps table
// (after api.rst, the authority): such a comment heads a block of defines, and some blocks hold
// later ioctls it is not about (KVM_PPC_SVM_OFF sits under KVM_CAP_PMU_EVENT_FILTER's).
void set_capability(Ioctl& io, const MacroInfo& m, const HeaderText& text, const Rules& rules) {
  io.gating_cap = gating_cap_for(m.line, text.lines, text.cap_comments);
  if (!io.gating_cap.empty()) io.cap_source = "header comment";
  auto rule = rules.caps.find(io.name);
  if (rule == rules.caps.end()) return;
  io.gating_cap = rule->second.cap;
  io.cap_source = io.gating_cap.empty() ? "" : "caps table";
  for (const auto& [scope, cap] : rule->second.by_scope) {
    if (!(io.scopes & scope)) {
      throw std::runtime_error("ioctl_caps.rules gives " + io.name +
                               " a capability on a kind of fd it does not work on; its scopes "
                               "come from ioctl_scopes.rules");
    }
    io.scope_caps.emplace_back(scope, cap);
  }
}

Ioctl build_ioctl(const MacroSet& macros, std::size_t i, const Evaluated& evaluated,
                  const HeaderText& text, const ArchInfo& arch, RecordBuilder& records,
                  const Rules& rules) {
  const MacroInfo& m = macros.list[i];
  const auto& inv = *macros.invocations[i];
  Ioctl io;
  io.name = m.name;
  io.cpp_name = camel_case_kvm(m.name);
  io.file = m.file;
  io.line = m.line;
  io.deprecated = m.body.size() == 1 && starts_with(m.body[0], "__KVM_DEPRECATED_");
  io.dir = direction_of(inv[0]);
  auto a = invocation_args(inv);
  if (a.size() >= 2) {
    try {
      io.nr = std::stoull(a[1], nullptr, 0);
    } catch (...) {
      throw std::runtime_error(at(m) + " has a command number kvmgen cannot read: " + a[1]);
    }
  }
  if (a.size() >= 3) {
    auto t = evaluated.arg_types.find(i);
    set_argument(io, a[2], t == evaluated.arg_types.end() ? nullptr : &t->second, arch, m, records);
  }
  if (io.available) {
    auto v = evaluated.values.find(i);
    if (v == evaluated.values.end())
      throw std::runtime_error(at(m) + " did not evaluate to an integer");
    io.request = v->second.bits;
  }
  assign_scopes(io, m, rules, section_scope_at(text.sections, m.line));
  set_capability(io, m, text, rules);
  return io;
}

// A comment may name a capability these headers no longer (or never) define; keep only the
// ones that exist so that the descriptor can refer to the Cap enumerator.
void drop_undefined_caps(Model& model, const MacroSet& macros) {
  for (Ioctl& io : model.ioctls) {
    for (auto& [scope, cap] : io.scope_caps) {
      if (!cap.empty() && !macros.by_name.count(cap)) {
        model.notes.push_back(io.name + ": the caps table names " + cap +
                              ", which the header does not define; none recorded for that fd");
        cap.clear();
      }
    }
    if (!io.gating_cap.empty() && !macros.by_name.count(io.gating_cap)) {
      model.notes.push_back(io.name + ": its " + io.cap_source + " names " + io.gating_cap +
                            ", which the header does not define; no capability recorded");
      io.gating_cap.clear();
      io.cap_source.clear();
    }
  }
}

template <class Table>
void note_unused_lines(Model& model, const Table& table, const std::string& file) {
  for (const auto& entry : table) {
    const std::string& name = entry.first;  // not a structured binding: clang 14 cannot capture one
    bool found = std::any_of(model.ioctls.begin(), model.ioctls.end(),
                             [&](const Ioctl& io) { return io.name == name; });
    if (!found) model.notes.push_back(file + " names " + name + ", which this header lacks");
  }
}

}  // namespace

void add_ioctls(Model& model, const ArchInfo& arch, const MacroSet& macros,
                const Evaluated& evaluated, RecordBuilder& records, const Rules& rules) {
  std::map<std::string, HeaderText> texts;
  for (std::size_t i = 0; i < macros.list.size(); ++i) {
    if (!macros.invocations[i]) continue;
    const HeaderText& text = text_of(texts, macros.list[i].path);
    model.ioctls.push_back(build_ioctl(macros, i, evaluated, text, arch, records, rules));
  }
  drop_undefined_caps(model, macros);
  note_unused_lines(model, rules.caps, "ioctl_caps.rules");
  note_unused_lines(model, rules.scopes, "ioctl_scopes.rules");
  std::set<std::string> names;
  for (const Ioctl& io : model.ioctls) {
    if (!names.insert(io.cpp_name).second) {
      throw std::runtime_error("two ioctls map to the C++ name " + io.cpp_name);
    }
  }
}

}  // namespace kvmgen

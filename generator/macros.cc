#include "generator/macros.h"

#include <stdexcept>

#include "generator/header_text.h"
#include "generator/naming.h"

namespace kvmgen {

std::vector<MacroInfo> collect_macros(const TranslationUnit& tu) {
  std::vector<MacroInfo> out;
  visit_children(tu.root(), [&](CXCursor c) {
    if (clang_getCursorKind(c) != CXCursor_MacroDefinition) return;
    Location loc = location_of(c);
    std::string file = our_file(loc.path);
    if (file.empty()) return;
    MacroInfo m;
    m.name = str(clang_getCursorSpelling(c));
    m.function_like = clang_Cursor_isMacroFunctionLike(c);
    auto toks = macro_tokens(tu.get(), c);
    if (!toks.empty()) toks.erase(toks.begin());
    m.body = toks;
    m.file = file;
    m.path = loc.path;
    m.line = loc.line;
    out.push_back(std::move(m));
  });
  return out;
}

std::optional<std::vector<std::string>> ioctl_invocation(
    const MacroInfo& m, const std::map<std::string, const MacroInfo*>& by_name) {
  const MacroInfo* cur = &m;
  for (int depth = 0; depth < 8 && cur && !cur->function_like; ++depth) {
    const auto& b = cur->body;
    if (b.size() >= 3 && (b[0] == "_IO" || b[0] == "_IOR" || b[0] == "_IOW" || b[0] == "_IOWR") &&
        b[1] == "(") {
      return b;
    }
    if (b.size() == 1) {
      auto it = by_name.find(b[0]);
      cur = it == by_name.end() ? nullptr : it->second;
      continue;
    }
    break;
  }
  return std::nullopt;
}

std::vector<std::string> invocation_args(const std::vector<std::string>& toks) {
  std::vector<std::string> args;
  std::string cur;
  int depth = 0;
  for (std::size_t i = 2; i < toks.size(); ++i) {
    const std::string& t = toks[i];
    if (t == "(") ++depth;
    if (t == ")") {
      if (depth == 0) break;
      --depth;
    }
    if (t == "," && depth == 0) {
      args.push_back(cur);
      cur.clear();
      continue;
    }
    if (!cur.empty()) cur += ' ';
    cur += t;
  }
  args.push_back(cur);
  return args;
}

// An ioctl written in a way ioctl_invocation() does not know (_IOC directly, say) would pass
// for a plain integer constant: stop instead, naming it.
void refuse_unrecognised_ioctl(const MacroInfo& m) {
  for (const std::string& t : m.body) {
    if (starts_with(t, "_IO")) {
      throw std::runtime_error(m.path + ":" + std::to_string(m.line) + ": " + m.name +
                               " looks like an ioctl but is not written with _IO, _IOR, _IOW or "
                               "_IOWR (it uses " +
                               t +
                               "); kvmgen would take it for a plain "
                               "constant: extend ioctl_invocation() in generator/macros.cc");
    }
  }
}

}  // namespace kvmgen

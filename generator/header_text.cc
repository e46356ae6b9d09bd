#include "generator/header_text.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "generator/model.h"
#include "generator/naming.h"

namespace kvmgen {

std::string our_file(const std::string& path) {
  if (ends_with(path, "/linux/kvm.h")) return "linux/kvm.h";
  if (ends_with(path, "/asm/kvm.h")) return "asm/kvm.h";
  return "";
}

// The include-relative name of any header ("asm/ptrace.h"), for records that linux/kvm.h or
// asm/kvm.h use by value but another header defines. Falls back to the path as clang gave it.
std::string header_name(const std::string& path, const std::vector<std::string>& include_dirs) {
  std::string ours = our_file(path);
  if (!ours.empty()) return ours;
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  for (const auto& d : include_dirs) {
    std::filesystem::path rel = p.lexically_relative(std::filesystem::path(d).lexically_normal());
    if (!rel.empty() && *rel.begin() != "..") return rel.string();
  }
  return path;
}

// The header's ioctl sections, recognised by their comments ("ioctls for vcpu fds"). A section
// runs from its comment to the next section or the next struct definition: newer headers
// dropped the "VM fds" comment, and the /dev/kvm section would otherwise swallow every VM
// ioctl below it. Sections only cross-check ioctl_scopes.rules, which gives the scopes.
namespace {

// Plain string scanning, not std::regex: libstdc++'s regex recurses once per input character
// and a hostile header with a very long line would overflow the stack.
std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// True when `line` (lowercase) says "ioctl for <what>" or "ioctls for <what>".
bool names_ioctls_for(const std::string& line, std::string_view what) {
  for (std::string_view lead : {"ioctl for ", "ioctls for "}) {
    std::string needle = std::string(lead) + std::string(what);
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
}

unsigned section_marker(const std::string& line) {
  static const std::vector<std::pair<std::string_view, unsigned>> markers = {
      {"/dev/kvm fds", kSystem},   {"fds returned by kvm_create_device", kDevice},
      {"vcpu fd", kVcpu},          {"vm fd", kVm},
      {"virtual machine fd", kVm},
  };
  std::string low = lowercase(line);
  for (const auto& [what, scope] : markers) {
    if (names_ioctls_for(low, what)) return scope;
  }
  return 0;
}

bool starts_struct_definition(const std::string& line) {
  return line.compare(0, 7, "struct ") == 0 && line.find('{') != std::string::npos;
}

}  // namespace

std::vector<Section> find_sections(const std::vector<std::string>& lines) {
  std::vector<Section> out;
  auto close = [&](unsigned last) {
    if (!out.empty() && out.back().last_line == 0) out.back().last_line = last;
  };
  for (unsigned n = 1; n <= lines.size(); ++n) {
    const std::string& line = lines[n - 1];
    if (unsigned scope = section_marker(line)) {
      close(n - 1);
      out.push_back({n, 0, scope});
    } else if (starts_struct_definition(line)) {
      close(n - 1);
    }
  }
  close(static_cast<unsigned>(lines.size()));
  return out;
}

unsigned section_scope_at(const std::vector<Section>& sections, unsigned line) {
  for (const Section& s : sections) {
    if (s.first_line < line && line <= s.last_line) return s.scopes;
  }
  return 0;
}

// "Available with KVM_CAP_X" comments directly above an ioctl name the capability gating it.
std::map<unsigned, std::string> find_cap_comments(const std::vector<std::string>& lines) {
  std::map<unsigned, std::string> out;  // line of the comment -> cap
  unsigned n = 0;
  for (const std::string& line : lines) {
    ++n;
    std::size_t at = line.find("Available with");
    if (at == std::string::npos) continue;
    std::size_t i = at + std::string_view("Available with").size();
    std::size_t spaces = i;
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i == spaces || line.compare(i, 8, "KVM_CAP_") != 0) continue;
    std::size_t end = i;
    while (end < line.size() &&
           (std::isupper(static_cast<unsigned char>(line[end])) ||
            std::isdigit(static_cast<unsigned char>(line[end])) || line[end] == '_')) {
      ++end;
    }
    out[n] = line.substr(i, end - i);
  }
  return out;
}

// Splits a header into lines numbered as clang numbers them (clang_getExpansionLocation):
// "\n", "\r\n" and a lone "\r" each end a line. std::getline would treat "\r" as text, and
// the line numbers clang reports would then run past the end of the vector.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read the header to find its sections");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  std::string line;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n' || c == '\r') {
      lines.push_back(std::move(line));
      line.clear();
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      line += c;
    }
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

std::string gating_cap_for(unsigned line, const std::vector<std::string>& lines,
                           const std::map<unsigned, std::string>& caps) {
  // Walk up through the contiguous block of defines and comments above the ioctl. The nearest
  // comment governs: once the walk has passed a comment without a cap and reaches code again,
  // an older "Available with" further up belongs to other ioctls (KVM_ENABLE_CAP's own comment
  // sits between it and KVM_CAP_DEBUGREGS's).
  bool passed_comment = false;
  for (unsigned l = line; l >= 1 && l + 12 > line; --l) {
    auto it = caps.find(l);
    if (it != caps.end()) return it->second;
    if (l > lines.size()) continue;  // a location past the text read: nothing to look at there
    const std::string& text = lines[l - 1];
    std::size_t start = text.find_first_not_of(" \t");
    if (start == std::string::npos) break;  // blank line ends the block
    bool comment = text.compare(start, 2, "/*") == 0 || text.compare(start, 1, "*") == 0 ||
                   text.compare(start, 2, "//") == 0;
    if (comment) {
      passed_comment = true;
    } else if (passed_comment && l != line) {
      break;
    }
  }
  return "";
}

}  // namespace kvmgen

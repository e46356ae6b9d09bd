// What kvmgen reads from the header files as text, beside what clang parses: which file a
// location is in, the line table, the ioctl section comments and the "Available with" comments.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kvmgen {

// "linux/kvm.h" or "asm/kvm.h" when the path is one of the two headers we model, else "".
std::string our_file(const std::string& path);

// The include-relative name of any header ("asm/ptrace.h"); see header_text.cc.
std::string header_name(const std::string& path, const std::vector<std::string>& include_dirs);

// The header's lines, numbered as clang numbers them ("\n", "\r\n" and a lone "\r" end one).
std::vector<std::string> read_lines(const std::string& path);

// One ioctl section of the header ("ioctls for vcpu fds"), up to the next section or struct.
struct Section {
  unsigned first_line, last_line;  // 1-based, inclusive
  unsigned scopes;                 // one Scope bit
};
std::vector<Section> find_sections(const std::vector<std::string>& lines);

// The scope of the section holding `line`, 0 if none does.
unsigned section_scope_at(const std::vector<Section>& sections, unsigned line);

// Line of each "Available with KVM_CAP_X" comment -> KVM_CAP_X.
std::map<unsigned, std::string> find_cap_comments(const std::vector<std::string>& lines);

// The capability the nearest "Available with" comment above `line` names, or "".
std::string gating_cap_for(unsigned line, const std::vector<std::string>& lines,
                           const std::map<unsigned, std::string>& caps);

}  // namespace kvmgen

#include "generator/naming.h"

#include <cctype>
#include <vector>

namespace kvmgen {

std::string camel_case(std::string_view name, std::string_view strip_prefix) {
  if (starts_with(name, strip_prefix)) name.remove_prefix(strip_prefix.size());
  std::vector<std::string_view> words;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '_') {
      if (i > start) words.push_back(name.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty() && std::isdigit(static_cast<unsigned char>(out.back())) &&
        std::isdigit(static_cast<unsigned char>(w.front()))) {
      out += '_';
    }
    for (std::size_t i = 0; i < w.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(w[i]);
      out += static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
    }
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out.front()))) out.insert(0, "N");
  return out;
}

std::string camel_case_kvm(std::string_view name) {
  if (name.size() > 4 && (name.substr(0, 4) == "KVM_" || name.substr(0, 4) == "kvm_")) {
    name.remove_prefix(4);
  }
  return camel_case(name);
}

}  // namespace kvmgen

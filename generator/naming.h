// Rules that derive C++ names from kernel macro names.
#pragma once

#include <string>
#include <string_view>

namespace kvmgen {

// KVM_CAP_X86_SMM with prefix "KVM_CAP_" -> "X86Smm". Words are capitalised; where two words
// meet digit-to-digit an underscore is kept so that PCI_2_3 (Pci2_3) and PCI_23 (Pci23) stay
// distinct. A name that would start with a digit gets an "N" in front.
std::string camel_case(std::string_view name, std::string_view strip_prefix = {});

// Strips a leading "KVM_"/"kvm_" (any case) and camel-cases the rest: the rule for ioctls and
// plain constants.
std::string camel_case_kvm(std::string_view name);

// True when `s` starts with `prefix`.
inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace kvmgen

// The in-memory model kvmgen builds from linux/kvm.h: constant families, ioctls and records.
// Everything the templates render and the JSON describes comes from here; nothing in it is
// output text.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvmgen {

// An integer value as clang evaluated it. Kept as the raw 64 bits plus signedness so that
// both `-1` and `1ULL << 63` survive exactly.
struct IntValue {
  std::uint64_t bits = 0;
  bool is_signed = false;
  bool negative() const { return is_signed && static_cast<std::int64_t>(bits) < 0; }
  std::string to_string() const;  // decimal, with a leading '-' for negative values
};

// One object-like macro of the parsed headers with an integer value.
struct Constant {
  std::string name;  // the C macro (or C enumerator) name
  IntValue value;
  std::string file;  // "linux/kvm.h" or "asm/kvm.h"
  unsigned line = 0;
  std::string family;    // name of the family it belongs to, empty for plain constants
  std::string cpp_name;  // CamelCase enumerator / constant name derived by rule
  bool from_c_enum = false;
  std::string alias_of;  // the constant this one is defined as (`#define A B`), if any
};

// Plain: a rule that keeps matching constants out of any family (they stay plain constants),
// for prefixes a broader family would otherwise swallow (KVM_MSR_FILTER_MAX_*).
enum class FamilyKind { Enum, Flags, Plain };

struct Family {
  std::string name;  // C++ type name, e.g. "Cap"
  FamilyKind kind = FamilyKind::Enum;
  std::string rule;   // the rule that formed it, e.g. "prefix KVM_CAP_" (documentation)
  std::string strip;  // prefix stripped from member names to form enumerators
  std::vector<std::size_t> members;  // indices into Model::constants, by value then name
  std::string underlying;            // std::uint32_t, std::int64_t, ...
};

enum class Direction { None, Read, Write, ReadWrite };  // as encoded: _IO, _IOR, _IOW, _IOWR

// The direction's word in kvm_api.json and the descriptors ("ReadWrite").
inline const char* direction_name(Direction d) {
  switch (d) {
    case Direction::None:
      return "None";
    case Direction::Read:
      return "Read";
    case Direction::Write:
      return "Write";
    case Direction::ReadWrite:
      return "ReadWrite";
  }
  return "None";
}

enum Scope : unsigned { kSystem = 1, kVm = 2, kVcpu = 4, kDevice = 8 };

// Each scope bit with its word in the rules files and kvm_api.json, and its C++ enumerator;
// the one table behind parsing, rendering and naming scopes.
struct ScopeName {
  Scope bit;
  const char* word;  // "vm"
  const char* cpp;   // "Vm", as in kvm::abi::Scope::Vm
};
inline constexpr ScopeName kScopeNames[] = {
    {kSystem, "system", "System"},
    {kVm, "vm", "Vm"},
    {kVcpu, "vcpu", "Vcpu"},
    {kDevice, "device", "Device"},
};

// The words of the scope bits set in `scopes` ("system", "vm"), in kScopeNames' order.
inline std::vector<std::string> scope_words(unsigned scopes) {
  std::vector<std::string> out;
  for (const ScopeName& n : kScopeNames) {
    if (scopes & n.bit) out.push_back(n.word);
  }
  return out;
}

struct Ioctl {
  std::string name;      // KVM_GET_REGS
  std::string cpp_name;  // GetRegs
  Direction dir = Direction::None;
  std::uint64_t nr = 0;                  // the command number inside the request
  std::optional<std::uint64_t> request;  // evaluated request number; empty when unavailable
  std::string arg_c_type;    // as written in the header: "struct kvm_regs", "__u64", "" for _IO
  std::string arg_cpp_type;  // our type: "kvm_regs", "std::uint64_t", "" for _IO
  std::uint64_t arg_size = 0;
  bool available = true;    // false when the argument type is not defined for this target
  bool deprecated = false;  // defined through one of the header's __KVM_DEPRECATED_* aliases
  std::string unavailable_reason;
  unsigned scopes = 0;       // bitmask of Scope
  std::string scope_source;  // "section" or "exception table"
  std::string gating_cap;    // KVM_CAP_* gating it, if known
  std::string cap_source;    // "header comment" ("Available with KVM_CAP_X") or "caps table"
  // Where the capability depends on the fd kind: scope bit -> KVM_CAP_* (empty: none), in the
  // caps table's order; gating_cap is then the first one's.
  std::vector<std::pair<unsigned, std::string>> scope_caps;
  std::string file;
  unsigned line = 0;
};

struct Record;

// One field of a record. Anonymous nested records are held inline (`nested`).
struct Field {
  std::string name;                 // empty for an anonymous struct/union member
  std::string cpp_type;             // element type for scalars and named records; empty when nested
  std::vector<std::uint64_t> dims;  // array dimensions, outermost first; 0 = flexible/zero-length
  bool flexible = false;            // C99 flexible array member (`T x[]`)
  int bit_width = -1;               // >= 0 for bitfields
  std::uint64_t offset_bits = 0;
  std::uint64_t size = 0;  // bytes, of the whole member (0 for flexible arrays and empty types)
  std::uint64_t align = 0;
  int explicit_align = 0;          // from __attribute__((aligned(N))) on the field
  std::unique_ptr<Record> nested;  // anonymous record type, defined inline
  std::string note;                // how a C-only construct was handled, if it was
  bool omitted = false;            // present in C, absent from C++ (empty in C); see note
};

struct Record {
  std::string name;  // empty for anonymous records
  bool is_union = false;
  std::uint64_t size = 0;
  std::uint64_t align = 0;
  bool packed = false;
  int explicit_align = 0;
  bool empty_in_c = false;  // sizeof == 0 in C: C++ cannot have it; reported, not asserted
  std::vector<Field> fields;
  std::string file;
  unsigned line = 0;
  std::string note;
};

struct Model {
  std::string arch;           // x86_64, aarch64, riscv64
  std::string triple;         // x86_64-linux-gnu
  std::string header;         // the path parsed, as given
  std::string linux_version;  // "6.1.187" from LINUX_VERSION_CODE
  std::string source;         // where the headers came from, as --source said; may be empty
  std::vector<Constant> constants;
  std::vector<Family> families;
  std::vector<Ioctl> ioctls;
  std::vector<std::unique_ptr<Record>> records;  // named records, in an order C++ accepts
  std::vector<std::string> notes;  // what the generator reports about constructs it handled
};

}  // namespace kvmgen

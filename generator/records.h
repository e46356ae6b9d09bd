// Records (structs and unions) with their exact layout, built from clang's cursors.
#pragma once

#include <clang-c/Index.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "generator/arch.h"
#include "generator/macros.h"
#include "generator/model.h"

namespace kvmgen {

// The C++ type of a scalar C type ("std::uint32_t"); throws naming `context` for a kind of
// type kvmgen does not model.
std::string scalar_type(CXType t, const std::string& context);

// Adds records to a model: each named one once, after the named records it holds.
class RecordBuilder {
 public:
  RecordBuilder(Model& model, std::vector<std::string> include_dirs)
      : model_(model), include_dirs_(std::move(include_dirs)) {}

  // Adds the named record (and, first, any named records defined inside it) to the model.
  void add_named(CXCursor c);

  // A named record used by value may come from another header (arm64's kvm_regs holds
  // asm/ptrace.h's user_pt_regs): it is modelled too, ahead of its user, or the C++ would name
  // a type it never defines.
  void add_dependency(CXCursor decl, const std::string& context);

 private:
  std::unique_ptr<Record> build(CXCursor c);
  void add_anonymous_member(Record& parent, CXType parent_type, CXCursor c);
  static std::string first_leaf(const Record& r);
  Field build_field(CXCursor c);

  Model& model_;
  std::vector<std::string> include_dirs_;
  std::set<std::string> done_;
};

// Refuses an asm/kvm.h of another arch (see ArchInfo::asm_marker_record).
void check_asm_is_for(const ArchInfo& arch, const Model& model,
                      const std::vector<MacroInfo>& macros);

}  // namespace kvmgen

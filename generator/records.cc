#include "generator/records.h"

#include <algorithm>
#include <stdexcept>

#include "generator/clang.h"
#include "generator/header_text.h"

namespace kvmgen {

std::string scalar_type(CXType t, const std::string& context) {
  CXType c = clang_getCanonicalType(t);
  long long size = clang_Type_getSizeOf(c);
  auto fixed = [&](bool is_signed) {
    return std::string(is_signed ? "std::int" : "std::uint") + std::to_string(size * 8) + "_t";
  };
  switch (c.kind) {
    case CXType_Bool:
      return "bool";
    case CXType_Char_S:
    case CXType_Char_U:
      return "char";
    case CXType_SChar:
    case CXType_Short:
    case CXType_Int:
    case CXType_Long:
    case CXType_LongLong:
      return fixed(true);
    case CXType_UChar:
    case CXType_UShort:
    case CXType_UInt:
    case CXType_ULong:
    case CXType_ULongLong:
      return fixed(false);
    case CXType_Int128:
      return "__int128";
    case CXType_UInt128:
      return "unsigned __int128";
    case CXType_Float:
      return "float";
    case CXType_Double:
      return "double";
    case CXType_Enum:
      return scalar_type(clang_getEnumDeclIntegerType(clang_getTypeDeclaration(c)), context);
    case CXType_Void:
      return "void";
    case CXType_Pointer: {
      CXType pointee = clang_getCanonicalType(clang_getPointeeType(c));
      std::string cv = clang_isConstQualifiedType(pointee) ? "const " : "";
      if (pointee.kind == CXType_Record) {
        return cv + str(clang_getCursorSpelling(clang_getTypeDeclaration(pointee))) + "*";
      }
      return cv + scalar_type(pointee, context) + "*";
    }
    default:
      throw std::runtime_error(context + ": type '" + str(clang_getTypeSpelling(t)) +
                               "' is a kind of C construct kvmgen does not model yet (type kind " +
                               str(clang_getTypeKindSpelling(c.kind)) + "); extend scalar_type()");
  }
}

void RecordBuilder::add_named(CXCursor c) {
  std::string name = str(clang_getCursorSpelling(c));
  if (done_.count(name)) return;
  done_.insert(name);
  auto rec = build(c);
  rec->name = name;
  model_.records.push_back(std::move(rec));
}

void RecordBuilder::add_dependency(CXCursor decl, const std::string& context) {
  CXCursor def = clang_getCursorDefinition(decl);
  if (clang_Cursor_isNull(def)) {
    throw std::runtime_error(context + ": record type '" + str(clang_getCursorSpelling(decl)) +
                             "' has no definition in these headers");
  }
  add_named(def);
}

std::unique_ptr<Record> RecordBuilder::build(CXCursor c) {
  auto rec = std::make_unique<Record>();
  CXType t = clang_getCursorType(c);
  Location loc = location_of(c);
  rec->file = header_name(loc.path, include_dirs_);
  rec->line = loc.line;
  rec->is_union = clang_getCursorKind(c) == CXCursor_UnionDecl;
  long long size = clang_Type_getSizeOf(t);
  long long align = clang_Type_getAlignOf(t);
  if (size < 0 || align < 0) throw std::runtime_error(where(c) + ": record has no layout");
  rec->size = static_cast<std::uint64_t>(size);
  rec->align = static_cast<std::uint64_t>(align);
  rec->packed = has_child_kind(c, CXCursor_PackedAttr);
  if (has_child_kind(c, CXCursor_AlignedAttr)) rec->explicit_align = static_cast<int>(align);
  if (size == 0) {
    rec->empty_in_c = true;
    rec->note = "empty in C (sizeof 0); C++ gives it size 1, so its size is not asserted";
  }

  visit_children(c, [&](CXCursor child) {
    CXCursorKind k = clang_getCursorKind(child);
    if (is_record_kind(k) && clang_isCursorDefinition(child)) {
      if (clang_Cursor_isAnonymousRecordDecl(child)) {
        add_anonymous_member(*rec, t, child);
      } else if (!clang_Cursor_isAnonymous(child)) {
        add_named(child);  // C hoists named nested records to file scope; so do we
      }
      return;
    }
    if (k == CXCursor_FieldDecl) rec->fields.push_back(build_field(child));
  });
  // In a union that has a size, an empty member can stay: C++ gives it one byte, which the
  // union absorbs without any layout change. Only zero-sized unions and structs need the
  // member gone.
  if (rec->is_union && rec->size > 0) {
    for (Field& f : rec->fields) {
      if (f.omitted && !f.flexible) {
        f.omitted = false;
        f.note = "empty in C; a 1-byte member in C++, which the union's size absorbs";
      }
    }
  }
  return rec;
}

// An anonymous struct/union member (no declarator). Its offset is derived from its first
// named leaf, which clang can locate through the parent type.
void RecordBuilder::add_anonymous_member(Record& parent, CXType parent_type, CXCursor c) {
  Field f;
  f.nested = build(c);
  std::string leaf = first_leaf(*f.nested);
  if (leaf.empty()) throw std::runtime_error(where(c) + ": anonymous member with no named field");
  long long in_parent = clang_Type_getOffsetOf(parent_type, leaf.c_str());
  long long in_anon = clang_Type_getOffsetOf(clang_getCursorType(c), leaf.c_str());
  if (in_parent < 0 || in_anon < 0) {
    throw std::runtime_error(where(c) + ": cannot locate anonymous member via field " + leaf);
  }
  f.offset_bits = static_cast<std::uint64_t>(in_parent - in_anon);
  f.size = f.nested->size;
  f.align = f.nested->align;
  if (f.nested->size == 0) {
    // The __DECLARE_FLEX_ARRAY idiom: struct { struct { } __empty_x; T x[]; }. It is zero-sized
    // in C; flattening it into the parent keeps every offset and the same access syntax.
    for (auto& inner : f.nested->fields) {
      inner.offset_bits += f.offset_bits;
      if (inner.note.empty() && !inner.omitted) {
        inner.note = "hoisted out of a zero-sized anonymous struct (flexible-array wrapper)";
      }
      parent.fields.push_back(std::move(inner));
    }
    return;
  }
  parent.fields.push_back(std::move(f));
}

std::string RecordBuilder::first_leaf(const Record& r) {
  for (const auto& f : r.fields) {
    if (!f.name.empty()) return f.name;
    if (f.nested) {
      std::string s = first_leaf(*f.nested);
      if (!s.empty()) return s;
    }
  }
  return "";
}

Field RecordBuilder::build_field(CXCursor c) {
  Field f;
  f.name = str(clang_getCursorSpelling(c));
  std::string context = where(c) + ": field " + f.name;
  long long off = clang_Cursor_getOffsetOfField(c);
  if (off < 0) throw std::runtime_error(context + ": no offset");
  f.offset_bits = static_cast<std::uint64_t>(off);
  if (clang_Cursor_isBitField(c)) f.bit_width = clang_getFieldDeclBitWidth(c);
  if (has_child_kind(c, CXCursor_AlignedAttr)) f.explicit_align = -1;  // resolved below

  CXType t = clang_getCursorType(c);
  long long size = clang_Type_getSizeOf(t);
  f.size = size > 0 ? static_cast<std::uint64_t>(size) : 0;
  CXType elem = clang_getCanonicalType(t);
  while (true) {
    if (elem.kind == CXType_ConstantArray) {
      f.dims.push_back(static_cast<std::uint64_t>(clang_getArraySize(elem)));
      elem = clang_getCanonicalType(clang_getArrayElementType(elem));
    } else if (elem.kind == CXType_IncompleteArray) {
      f.dims.push_back(0);
      f.flexible = true;
      elem = clang_getCanonicalType(clang_getArrayElementType(elem));
    } else {
      break;
    }
  }
  long long elem_align = clang_Type_getAlignOf(elem);
  f.align = elem_align > 0 ? static_cast<std::uint64_t>(elem_align) : 1;
  if (f.explicit_align) {
    long long a = clang_Type_getAlignOf(t);
    f.explicit_align = static_cast<int>(a);
    f.align = static_cast<std::uint64_t>(a);
  }
  if (elem.kind == CXType_Record) {
    CXCursor decl = clang_getTypeDeclaration(elem);
    if (clang_Cursor_isAnonymous(decl)) {
      f.nested = build(decl);
    } else {
      f.cpp_type = str(clang_getCursorSpelling(decl));
      add_dependency(decl, context);
    }
    // A member of a zero-sized record type occupies no bytes in C. C++ (as a GNU extension)
    // agrees only when the record holds nothing but zero-length arrays; any other such
    // member, typically an empty `struct {}`, would take a byte in C++ and is omitted.
    if (clang_Type_getSizeOf(elem) == 0 && f.dims.empty()) {
      auto zero_length = [](const Field& x) {
        return std::find(x.dims.begin(), x.dims.end(), 0) != x.dims.end();
      };
      // Members already omitted (the empty `__empty_x` structs of __DECLARE_FLEX_ARRAY
      // wrappers hoisted into a named union, as in kvm_nested_state.data) take no space.
      auto kept = [](const Field& x) { return !x.omitted; };
      bool zero_in_cpp = f.nested &&
                         std::any_of(f.nested->fields.begin(), f.nested->fields.end(), kept) &&
                         std::all_of(f.nested->fields.begin(), f.nested->fields.end(),
                                     [&](const Field& x) { return x.omitted || zero_length(x); });
      if (!zero_in_cpp) {
        f.omitted = true;
        f.note = "member of an empty struct type: zero-sized in C, impossible in C++; omitted";
      }
    }
  } else {
    f.cpp_type = scalar_type(elem, context);
  }
  return f;
}

// Refuses an asm/kvm.h of another arch (see ArchInfo::asm_marker_record).
void check_asm_is_for(const ArchInfo& arch, const Model& model,
                      const std::vector<MacroInfo>& macros) {
  for (const auto& r : model.records) {
    if (r->file != "asm/kvm.h" || r->name != arch.asm_marker_record) continue;
    if (arch.asm_marker_field.empty()) return;
    for (const auto& f : r->fields) {
      if (f.name == arch.asm_marker_field) return;
    }
  }
  std::string path = "asm/kvm.h";
  for (const auto& m : macros) {
    if (m.file == "asm/kvm.h") path = m.path;
  }
  std::string marker = "struct " + arch.asm_marker_record;
  if (!arch.asm_marker_field.empty()) marker += " with field " + arch.asm_marker_field;
  throw std::runtime_error(path + " is not the " + arch.arch + " asm/kvm.h (it lacks " + marker +
                           "). A header tree such as a kernel's `make headers_install` output "
                           "holds the asm/ of one arch only: generate that arch alone (--arch), "
                           "or give each arch its own tree with --include-dir " +
                           arch.arch + "=DIR");
}

}  // namespace kvmgen

#include "generator/parse.h"

#include <clang-c/Index.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "generator/naming.h"

namespace kvmgen {

std::string IntValue::to_string() const {
  if (negative()) return "-" + std::to_string(0 - bits);
  return std::to_string(bits);
}

namespace {

std::string str(CXString s) {
  const char* c = clang_getCString(s);
  std::string out = c ? c : "";
  clang_disposeString(s);
  return out;
}

struct Location {
  std::string path;
  unsigned line = 0;
};

Location location_of(CXCursor c) {
  CXFile file;
  unsigned line = 0, col = 0, off = 0;
  clang_getSpellingLocation(clang_getCursorLocation(c), &file, &line, &col, &off);
  Location loc;
  if (file) loc.path = str(clang_getFileName(file));
  loc.line = line;
  return loc;
}

// "linux/kvm.h" or "asm/kvm.h" when the path is one of the two headers we model, else "".
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

std::string where(CXCursor c) {
  Location l = location_of(c);
  return l.path + ":" + std::to_string(l.line);
}

struct MacroInfo {
  std::string name;
  std::vector<std::string> body;  // tokens after the name
  bool function_like = false;
  std::string file;
  std::string path;
  unsigned line = 0;
};

class TranslationUnit {
 public:
  TranslationUnit(const std::string& source, const std::vector<std::string>& args) {
    index_ = clang_createIndex(0, 0);
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    CXUnsavedFile unsaved{"kvmgen_input.c", source.c_str(),
                          static_cast<unsigned long>(source.size())};
    CXErrorCode err = clang_parseTranslationUnit2(
        index_, "kvmgen_input.c", argv.data(), static_cast<int>(argv.size()), &unsaved, 1,
        CXTranslationUnit_DetailedPreprocessingRecord | CXTranslationUnit_SkipFunctionBodies, &tu_);
    if (err != CXError_Success || !tu_) {
      clang_disposeIndex(index_);
      throw std::runtime_error("libclang could not parse the headers (error " +
                               std::to_string(static_cast<int>(err)) + ")");
    }
  }
  ~TranslationUnit() {
    clang_disposeTranslationUnit(tu_);
    clang_disposeIndex(index_);
  }
  TranslationUnit(const TranslationUnit&) = delete;
  TranslationUnit& operator=(const TranslationUnit&) = delete;

  CXTranslationUnit get() const { return tu_; }
  CXCursor root() const { return clang_getTranslationUnitCursor(tu_); }

  // Fatal diagnostics outside the generated probe lines, as text.
  std::vector<std::string> errors_in_headers() const {
    std::vector<std::string> out;
    unsigned n = clang_getNumDiagnostics(tu_);
    for (unsigned i = 0; i < n; ++i) {
      CXDiagnostic d = clang_getDiagnostic(tu_, i);
      CXDiagnosticSeverity sev = clang_getDiagnosticSeverity(d);
      CXFile file;
      unsigned line, col, off;
      clang_getSpellingLocation(clang_getDiagnosticLocation(d), &file, &line, &col, &off);
      std::string path = file ? str(clang_getFileName(file)) : "";
      if (sev >= CXDiagnostic_Error && path != "kvmgen_input.c") {
        out.push_back(str(clang_formatDiagnostic(d, clang_defaultDiagnosticDisplayOptions())));
      }
      clang_disposeDiagnostic(d);
    }
    return out;
  }

 private:
  CXIndex index_ = nullptr;
  CXTranslationUnit tu_ = nullptr;
};

template <class F>
void visit_children(CXCursor c, F&& f) {
  clang_visitChildren(
      c,
      [](CXCursor child, CXCursor, CXClientData data) {
        (*static_cast<F*>(data))(child);
        return CXChildVisit_Continue;
      },
      &f);
}

std::vector<std::string> macro_tokens(CXTranslationUnit tu, CXCursor c) {
  CXToken* tokens = nullptr;
  unsigned n = 0;
  clang_tokenize(tu, clang_getCursorExtent(c), &tokens, &n);
  std::vector<std::string> out;
  for (unsigned i = 0; i < n; ++i) out.push_back(str(clang_getTokenSpelling(tu, tokens[i])));
  clang_disposeTokens(tu, tokens, n);
  return out;
}

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

// If the macro is an ioctl request (its expansion, through single-name aliases, is an _IO*
// invocation), returns the invocation's tokens starting with _IO/_IOR/_IOW/_IOWR.
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

// Splits "_IOW ( KVMIO , 0x46 , struct kvm_x )" into its top-level arguments.
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

bool has_child_kind(CXCursor c, CXCursorKind kind) {
  bool found = false;
  visit_children(c, [&](CXCursor child) {
    if (clang_getCursorKind(child) == kind) found = true;
  });
  return found;
}

bool is_record_kind(CXCursorKind k) { return k == CXCursor_StructDecl || k == CXCursor_UnionDecl; }

class RecordBuilder {
 public:
  RecordBuilder(Model& model, std::vector<std::string> include_dirs)
      : model_(model), include_dirs_(std::move(include_dirs)) {}

  // Adds the named record (and, first, any named records defined inside it) to the model.
  void add_named(CXCursor c) {
    std::string name = str(clang_getCursorSpelling(c));
    if (done_.count(name)) return;
    done_.insert(name);
    auto rec = build(c);
    rec->name = name;
    model_.records.push_back(std::move(rec));
  }

  // A named record used by value may come from another header (arm64's kvm_regs holds
  // asm/ptrace.h's user_pt_regs): it is modelled too, ahead of its user, or the C++ would name
  // a type it never defines.
  void add_dependency(CXCursor decl, const std::string& context) {
    CXCursor def = clang_getCursorDefinition(decl);
    if (clang_Cursor_isNull(def)) {
      throw std::runtime_error(context + ": record type '" + str(clang_getCursorSpelling(decl)) +
                               "' has no definition in these headers");
    }
    add_named(def);
  }

 private:
  std::unique_ptr<Record> build(CXCursor c) {
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
  void add_anonymous_member(Record& parent, CXType parent_type, CXCursor c) {
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

  static std::string first_leaf(const Record& r) {
    for (const auto& f : r.fields) {
      if (!f.name.empty()) return f.name;
      if (f.nested) {
        std::string s = first_leaf(*f.nested);
        if (!s.empty()) return s;
      }
    }
    return "";
  }

  Field build_field(CXCursor c) {
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

  Model& model_;
  std::vector<std::string> include_dirs_;
  std::set<std::string> done_;
};

std::string build_args_note(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += a + " ";
  return s;
}

// The header's ioctl sections, recognised by their comments ("ioctls for vcpu fds"). A section
// runs from its comment to the next section or the next struct definition: newer headers
// dropped the "VM fds" comment, and the /dev/kvm section would otherwise swallow every VM
// ioctl below it. Sections only cross-check ioctl_scopes.rules, which gives the scopes.
struct Section {
  unsigned first_line, last_line;  // 1-based, inclusive
  unsigned scopes;
};

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

// The scope of the section holding `line`, 0 if none does.
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

std::string scope_words(unsigned scopes) {
  std::string out;
  for (const ScopeName& n : kScopeNames) {
    if (scopes & n.bit) out += (out.empty() ? "" : ",") + std::string(n.word);
  }
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
    throw std::runtime_error(at + " sits among the header's " + scope_words(section) +
                             " ioctls, but ioctl_scopes.rules gives it " + scope_words(io.scopes) +
                             ": correct the table, or mark its line "
                             "header-differs if the header files it wrongly");
  }
  io.scope_source +=
      agrees ? " (the header section agrees)"
             : " (the header files it among " + scope_words(section) + " ioctls, wrongly)";
}

// An enum family holds one value per member: a second member with the same value is a flag or
// a field helper that a prefix rule swept in (KVM_EXIT_HYPERCALL_LONG_MODE = 1 beside
// KVM_EXIT_EXCEPTION = 1), unless the header itself defines it as an alias of the first.
void check_enum_family(const Family& f, const std::vector<Constant>& constants) {
  if (f.kind != FamilyKind::Enum) return;
  std::map<std::uint64_t, const Constant*> by_value;
  for (std::size_t i : f.members) {
    const Constant& c = constants[i];
    std::string where = c.file + ":" + std::to_string(c.line) + ": " + c.name;
    if (c.name.find("_FLAG_") != std::string::npos) {  // X_FLAG_Y: a flag named as one
      throw std::runtime_error(where + " is a flag, but families.rules puts it in the enum " +
                               f.name + ": give its prefix a flags family (or a plain rule)");
    }
    auto [it, fresh] = by_value.emplace(c.value.bits, &c);
    const Constant& first = *it->second;
    if (fresh || c.alias_of == first.name || first.alias_of == c.name) continue;
    throw std::runtime_error(where + " has the value " + c.value.to_string() + " of " + first.name +
                             " in the enum " + f.name +
                             ": it belongs to another "
                             "family; give it one in families.rules (a flags or plain rule)");
  }
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
                               "constant: extend ioctl_invocation() in generator/parse.cc");
    }
  }
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

}  // namespace

Model build_model(const ParseOptions& options, const Rules& rules) {
  const ArchInfo& arch = arch_info(options.arch);
  Model model;
  model.arch = arch.arch;
  model.triple = arch.triple;
  model.header = options.header;
  model.source = options.source;

  std::vector<std::string> args = {"-x", "c", "-std=gnu11", "--target=" + arch.triple, "-nostdinc"};
  const auto& dirs =
      options.include_dirs.empty() ? arch.default_include_dirs : options.include_dirs;
  if (dirs.empty()) {
    throw std::runtime_error(arch.arch +
                             ": no Debian 12 package installs this arch's uapi "
                             "headers; give a header tree with --include-dir " +
                             arch.arch + "=DIR (tools/kernel_headers.sh fetches one)");
  }
  for (const auto& d : dirs) args.push_back("-I" + d);

  const std::string includes =
      "#include <" + options.header +
      ">\n#if __has_include(<linux/version.h>)\n#include <linux/version.h>\n"
      "#endif\n" +
      options.extra_source + "\n";

  // Pass 1: find the macros of our two headers.
  std::vector<MacroInfo> macros;
  {
    TranslationUnit tu(includes, args);
    auto errors = tu.errors_in_headers();
    if (!errors.empty()) {
      std::string msg = "the headers do not parse for " + arch.triple + ":";
      for (const auto& e : errors) msg += "\n  " + e;
      throw std::runtime_error(msg);
    }
    macros = collect_macros(tu);
    if (macros.empty()) {
      throw std::runtime_error("no macros found in " + options.header +
                               " (searched: " + build_args_note(dirs) + ")");
    }
  }
  std::map<std::string, const MacroInfo*> by_name;
  for (const auto& m : macros) by_name.emplace(m.name, &m);

  // Pass 2: the same headers plus one probe declaration per macro, which clang evaluates.
  std::string probe = includes;
  std::vector<std::optional<std::vector<std::string>>> invocations(macros.size());
  for (std::size_t i = 0; i < macros.size(); ++i) {
    const MacroInfo& m = macros[i];
    if (m.function_like || m.body.empty() || m.name[0] == '_') continue;
    invocations[i] = ioctl_invocation(m, by_name);
    if (!invocations[i]) refuse_unrecognised_ioctl(m);
    probe += "static const __auto_type kvmgen_v_" + std::to_string(i) + " = (" + m.name + ");\n";
    if (invocations[i]) {
      auto a = invocation_args(*invocations[i]);
      if (a.size() >= 3) probe += "typedef " + a[2] + " kvmgen_t_" + std::to_string(i) + ";\n";
    }
  }
  probe +=
      "#ifdef LINUX_VERSION_CODE\nstatic const __auto_type kvmgen_version = "
      "LINUX_VERSION_CODE;\n#endif\n";

  TranslationUnit tu(probe, args);
  std::map<std::size_t, IntValue> values;
  std::map<std::size_t, CXType> arg_types;
  std::vector<CXCursor> record_defs;
  struct EnumConst {
    std::string name, tag, file;
    unsigned line;
    IntValue value;
  };
  std::vector<EnumConst> enum_consts;

  std::function<void(CXCursor)> find_records = [&](CXCursor c) {
    CXCursorKind k = clang_getCursorKind(c);
    if (is_record_kind(k) && clang_isCursorDefinition(c) && !clang_Cursor_isAnonymous(c) &&
        !our_file(location_of(c).path).empty()) {
      record_defs.push_back(c);
    }
  };

  visit_children(tu.root(), [&](CXCursor c) {
    CXCursorKind k = clang_getCursorKind(c);
    std::string name = str(clang_getCursorSpelling(c));
    if (k == CXCursor_VarDecl && starts_with(name, "kvmgen_v_")) {
      CXEvalResult r = clang_Cursor_Evaluate(c);
      if (r) {
        if (clang_EvalResult_getKind(r) == CXEval_Int) {
          IntValue v;
          v.is_signed = !clang_EvalResult_isUnsignedInt(r);
          v.bits = v.is_signed ? static_cast<std::uint64_t>(clang_EvalResult_getAsLongLong(r))
                               : clang_EvalResult_getAsUnsigned(r);
          values[std::stoul(name.substr(9))] = v;
        }
        clang_EvalResult_dispose(r);
      }
    } else if (k == CXCursor_VarDecl && name == "kvmgen_version") {
      CXEvalResult r = clang_Cursor_Evaluate(c);
      if (r) {
        long long code = clang_EvalResult_getAsLongLong(r);
        model.linux_version = std::to_string(code >> 16) + "." +
                              std::to_string((code >> 8) & 0xff) + "." +
                              std::to_string(code & 0xff);
        clang_EvalResult_dispose(r);
      }
    } else if (k == CXCursor_TypedefDecl && starts_with(name, "kvmgen_t_")) {
      arg_types[std::stoul(name.substr(9))] = clang_getTypedefDeclUnderlyingType(c);
    } else if (k == CXCursor_EnumDecl && !our_file(location_of(c).path).empty()) {
      std::string tag = clang_Cursor_isAnonymous(c) ? "" : name;
      visit_children(c, [&](CXCursor e) {
        if (clang_getCursorKind(e) != CXCursor_EnumConstantDecl) return;
        Location loc = location_of(e);
        EnumConst ec{str(clang_getCursorSpelling(e)), tag, our_file(loc.path), loc.line, {}};
        CXType it = clang_getEnumDeclIntegerType(c);
        bool uns = it.kind == CXType_UInt || it.kind == CXType_ULong || it.kind == CXType_ULongLong;
        ec.value.is_signed = !uns;
        ec.value.bits = uns ? clang_getEnumConstantDeclUnsignedValue(e)
                            : static_cast<std::uint64_t>(clang_getEnumConstantDeclValue(e));
        enum_consts.push_back(ec);
      });
    } else {
      find_records(c);
    }
  });

  // Records, in source order, with named nested ones hoisted before their parents.
  RecordBuilder builder(model, dirs);
  for (CXCursor c : record_defs) builder.add_named(c);

  check_asm_is_for(arch, model, macros);

  // Ioctls.
  std::map<std::string, std::vector<Section>> sections;
  std::map<std::string, std::map<unsigned, std::string>> cap_comments;
  std::map<std::string, std::vector<std::string>> file_lines;
  std::set<std::string> constant_names;
  for (std::size_t i = 0; i < macros.size(); ++i) {
    const MacroInfo& m = macros[i];
    if (!invocations[i]) continue;
    if (!sections.count(m.path)) {
      file_lines[m.path] = read_lines(m.path);
      sections[m.path] = find_sections(file_lines[m.path]);
      cap_comments[m.path] = find_cap_comments(file_lines[m.path]);
    }
    Ioctl io;
    io.name = m.name;
    io.cpp_name = camel_case_kvm(m.name);
    io.file = m.file;
    io.line = m.line;
    io.deprecated = m.body.size() == 1 && starts_with(m.body[0], "__KVM_DEPRECATED_");
    const auto& inv = *invocations[i];
    io.dir = inv[0] == "_IO"    ? Direction::None
             : inv[0] == "_IOR" ? Direction::Read
             : inv[0] == "_IOW" ? Direction::Write
                                : Direction::ReadWrite;
    auto a = invocation_args(inv);
    if (a.size() >= 2) {
      auto it = by_name.find(a[1]);
      std::string nr = a[1];
      try {
        io.nr = std::stoull(nr, nullptr, 0);
      } catch (...) {
        throw std::runtime_error(m.path + ":" + std::to_string(m.line) + ": ioctl " + m.name +
                                 " has a command number kvmgen cannot read: " + nr);
      }
      (void)it;
    }
    if (a.size() >= 3) {
      io.arg_c_type = a[2];
      auto t = arg_types.find(i);
      long long size = t == arg_types.end() ? -1 : clang_Type_getSizeOf(t->second);
      if (size < 0) {
        io.available = false;
        io.unavailable_reason = "argument type '" + a[2] + "' is not defined for " + arch.arch;
      } else {
        io.arg_size = static_cast<std::uint64_t>(size);
        CXType canon = clang_getCanonicalType(t->second);
        if (canon.kind == CXType_Record) {
          CXCursor decl = clang_getTypeDeclaration(canon);
          io.arg_cpp_type = str(clang_getCursorSpelling(decl));
          builder.add_dependency(decl, m.path + ":" + std::to_string(m.line) + ": ioctl " + m.name);
        } else {
          io.arg_cpp_type = scalar_type(canon, m.name);
        }
      }
    }
    if (io.available) {
      auto v = values.find(i);
      if (v == values.end()) {
        throw std::runtime_error(m.path + ":" + std::to_string(m.line) + ": ioctl " + m.name +
                                 " did not evaluate to an integer");
      }
      io.request = v->second.bits;
    }
    assign_scopes(io, m, rules, section_scope_at(sections[m.path], m.line));
    io.gating_cap = gating_cap_for(m.line, file_lines[m.path], cap_comments[m.path]);
    if (!io.gating_cap.empty()) io.cap_source = "header comment";
    if (auto rule = rules.caps.find(io.name); rule != rules.caps.end()) {
      // The table (after api.rst, the authority) wins: an "Available with" comment heads a
      // block of defines, and some blocks hold later ioctls the comment is not about
      // (KVM_PPC_SVM_OFF sits under KVM_CAP_PMU_EVENT_FILTER's comment).
      io.gating_cap = rule->second.cap;
      io.cap_source = io.gating_cap.empty() ? "" : "caps table";
      for (const auto& [scope, cap] : rule->second.by_scope) {
        if (!(io.scopes & scope)) {
          throw std::runtime_error("ioctl_caps.rules gives " + io.name +
                                   " a capability on a kind of fd it does not work on; its "
                                   "scopes come from ioctl_scopes.rules");
        }
        io.scope_caps.emplace_back(scope, cap);
      }
    }
    model.ioctls.push_back(std::move(io));
  }
  // A comment may name a capability these headers no longer (or never) define; keep only
  // the ones that exist so that the descriptor can refer to the Cap enumerator.
  for (Ioctl& io : model.ioctls) {
    for (auto& [scope, cap] : io.scope_caps) {
      if (!cap.empty() && !by_name.count(cap)) {
        model.notes.push_back(io.name + ": the caps table names " + cap +
                              ", which the header does not define; none recorded for that fd");
        cap.clear();
      }
    }
    if (!io.gating_cap.empty() && !by_name.count(io.gating_cap)) {
      model.notes.push_back(io.name + ": its " + io.cap_source + " names " + io.gating_cap +
                            ", which the header does not define; no capability recorded");
      io.gating_cap.clear();
      io.cap_source.clear();
    }
  }
  for (const auto& entry : rules.caps) {
    const std::string& name = entry.first;
    bool found = std::any_of(model.ioctls.begin(), model.ioctls.end(),
                             [&](const Ioctl& io) { return io.name == name; });
    if (!found)
      model.notes.push_back("ioctl_caps.rules names " + name + ", which this header lacks");
  }
  for (const auto& entry : rules.scopes) {
    const std::string& name = entry.first;  // not a structured binding: clang 14 cannot capture one
    bool found = std::any_of(model.ioctls.begin(), model.ioctls.end(),
                             [&](const Ioctl& io) { return io.name == name; });
    if (!found)
      model.notes.push_back("ioctl_scopes.rules names " + name + ", which this header lacks");
  }

  // Integer constants: macros that are not ioctls, then C enumerators.
  std::set<std::string> enum_names;
  for (const auto& e : enum_consts) enum_names.insert(e.name);
  for (std::size_t i = 0; i < macros.size(); ++i) {
    const MacroInfo& m = macros[i];
    if (invocations[i]) continue;
    auto v = values.find(i);
    if (v == values.end()) continue;
    if (enum_names.count(m.name)) continue;  // "#define X X" aliases of enumerators
    Constant c;
    c.name = m.name;
    c.value = v->second;
    c.file = m.file;
    c.line = m.line;
    if (m.body.size() == 1 && by_name.count(m.body[0])) c.alias_of = m.body[0];
    model.constants.push_back(c);
  }
  for (const auto& e : enum_consts) {
    Constant c;
    c.name = e.name;
    c.value = e.value;
    c.file = e.file;
    c.line = e.line;
    c.from_c_enum = true;
    c.family = e.tag;  // provisional: the C tag, replaced by the family assignment below
    model.constants.push_back(c);
  }

  // Families: each constant goes to the most specific matching rule.
  std::map<std::string, std::size_t> family_index;
  for (const auto& r : rules.families) {
    if (r.kind == FamilyKind::Plain) continue;
    if (!family_index.count(r.family)) {
      Family f;
      f.name = r.family;
      f.kind = r.kind;
      family_index[r.family] = model.families.size();
      model.families.push_back(f);
    }
    Family& f = model.families[family_index[r.family]];
    f.rule += (f.rule.empty() ? "" : "; ") + r.match + " " + r.pattern;
  }
  for (std::size_t i = 0; i < model.constants.size(); ++i) {
    Constant& c = model.constants[i];
    const FamilyRule* best = nullptr;
    std::size_t best_len = 0;
    for (const auto& r : rules.families) {
      std::size_t len = 0;
      if (r.match == "c-enum") {
        if (c.from_c_enum && c.family == r.pattern) len = 1000;  // the C enum says it all
      } else if (r.match == "name") {
        if (c.name == r.pattern) len = 999;  // one constant, named outright
      } else if (c.name.size() > r.pattern.size()) {
        if (r.match == "prefix" && starts_with(c.name, r.pattern)) len = r.pattern.size();
        if (r.match == "suffix" && ends_with(c.name, r.pattern)) len = r.pattern.size();
      }
      if (len > best_len) {
        best = &r;
        best_len = len;
      }
    }
    if (!best || best->kind == FamilyKind::Plain) {
      c.family.clear();
      c.cpp_name = camel_case_kvm(c.name);
      continue;
    }
    Family& f = model.families[family_index[best->family]];
    c.family = f.name;
    std::string stem = c.name;
    if (best->match == "prefix") stem = c.name.substr(best->pattern.size());
    if (best->match == "suffix") stem = c.name.substr(0, c.name.size() - best->pattern.size());
    if (best->match == "c-enum") stem = c.name;
    if (!best->strip.empty() && starts_with(stem, best->strip)) {
      c.cpp_name = camel_case(stem.substr(best->strip.size()));
    } else {
      // A C enum's or a named constant's whole name is the stem; drop just the KVM_ prefix.
      c.cpp_name = best->match == "c-enum" || best->match == "name" ? camel_case_kvm(stem)
                                                                    : camel_case(stem);
    }
    f.members.push_back(i);
  }
  for (Family& f : model.families) {
    bool negative = false;
    std::uint64_t max = 0;
    std::int64_t min = 0;
    std::set<std::string> names;
    for (std::size_t i : f.members) {
      const Constant& c = model.constants[i];
      if (!names.insert(c.cpp_name).second) {
        throw std::runtime_error("family " + f.name + ": two members map to the C++ name " +
                                 c.cpp_name + " (one is " + c.name + ")");
      }
      if (c.value.negative()) {
        negative = true;
        min = std::min(min, static_cast<std::int64_t>(c.value.bits));
      } else {
        max = std::max(max, c.value.bits);
      }
    }
    if (negative) {
      f.underlying = (min >= INT32_MIN && max <= INT32_MAX) ? "std::int32_t" : "std::int64_t";
    } else {
      f.underlying = max <= UINT32_MAX ? "std::uint32_t" : "std::uint64_t";
    }
    if (f.members.empty())
      model.notes.push_back("family " + f.name + " has no members in this header");
  }
  for (const Family& f : model.families) check_enum_family(f, model.constants);
  std::set<std::string> plain;
  for (const Constant& c : model.constants) {
    if (c.family.empty() && !plain.insert(c.cpp_name).second) {
      throw std::runtime_error("two plain constants map to the C++ name " + c.cpp_name +
                               " (one is " + c.name + ")");
    }
  }
  std::set<std::string> ioctl_names;
  for (const Ioctl& io : model.ioctls) {
    if (!ioctl_names.insert(io.cpp_name).second) {
      throw std::runtime_error("two ioctls map to the C++ name " + io.cpp_name);
    }
  }
  return model;
}

}  // namespace kvmgen

// A thin layer over libclang's C API: owned strings and translation units, locations, and a
// child visitor that takes a lambda. Everything kvmgen asks libclang goes through here or
// through the C API directly on the cursors these return.
#pragma once

#include <clang-c/Index.h>

#include <string>
#include <vector>

namespace kvmgen {

// The text of a CXString, which it disposes of.
std::string str(CXString s);

struct Location {
  std::string path;
  unsigned line = 0;
};

Location location_of(CXCursor c);
std::string where(CXCursor c);  // "path:line", for messages

// One parsed source (given as text, named kvmgen_input.c) with its index; throws on failure.
class TranslationUnit {
 public:
  TranslationUnit(const std::string& source, const std::vector<std::string>& args);
  ~TranslationUnit();
  TranslationUnit(const TranslationUnit&) = delete;
  TranslationUnit& operator=(const TranslationUnit&) = delete;

  CXTranslationUnit get() const { return tu_; }
  CXCursor root() const { return clang_getTranslationUnitCursor(tu_); }

  // Fatal diagnostics outside the generated probe lines, as text.
  std::vector<std::string> errors_in_headers() const;

 private:
  CXIndex index_ = nullptr;
  CXTranslationUnit tu_ = nullptr;
};

// Calls f(child) for each direct child of c.
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

// The tokens of a cursor's extent (a macro definition: its name, then its body).
std::vector<std::string> macro_tokens(CXTranslationUnit tu, CXCursor c);

bool has_child_kind(CXCursor c, CXCursorKind kind);
inline bool is_record_kind(CXCursorKind k) {
  return k == CXCursor_StructDecl || k == CXCursor_UnionDecl;
}

}  // namespace kvmgen

#include "generator/clang.h"

#include <stdexcept>

namespace kvmgen {

std::string str(CXString s) {
  const char* c = clang_getCString(s);
  std::string out = c ? c : "";
  clang_disposeString(s);
  return out;
}

Location location_of(CXCursor c) {
  CXFile file;
  unsigned line = 0, col = 0, off = 0;
  clang_getSpellingLocation(clang_getCursorLocation(c), &file, &line, &col, &off);
  Location loc;
  if (file) loc.path = str(clang_getFileName(file));
  loc.line = line;
  return loc;
}

std::string where(CXCursor c) {
  Location l = location_of(c);
  return l.path + ":" + std::to_string(l.line);
}

TranslationUnit::TranslationUnit(const std::string& source, const std::vector<std::string>& args) {
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

TranslationUnit::~TranslationUnit() {
  clang_disposeTranslationUnit(tu_);
  clang_disposeIndex(index_);
}

std::vector<std::string> TranslationUnit::errors_in_headers() const {
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

std::vector<std::string> macro_tokens(CXTranslationUnit tu, CXCursor c) {
  CXToken* tokens = nullptr;
  unsigned n = 0;
  clang_tokenize(tu, clang_getCursorExtent(c), &tokens, &n);
  std::vector<std::string> out;
  for (unsigned i = 0; i < n; ++i) out.push_back(str(clang_getTokenSpelling(tu, tokens[i])));
  clang_disposeTokens(tu, tokens, n);
  return out;
}

bool has_child_kind(CXCursor c, CXCursorKind kind) {
  bool found = false;
  visit_children(c, [&](CXCursor child) {
    if (clang_getCursorKind(child) == kind) found = true;
  });
  return found;
}

}  // namespace kvmgen

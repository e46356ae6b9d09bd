#include "generator/parse.h"

#include <clang-c/Index.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "generator/clang.h"
#include "generator/families.h"
#include "generator/header_text.h"
#include "generator/ioctls.h"
#include "generator/macros.h"
#include "generator/naming.h"
#include "generator/records.h"

namespace kvmgen {

std::string IntValue::to_string() const {
  if (negative()) return "-" + std::to_string(0 - bits);
  return std::to_string(bits);
}

namespace {

std::vector<std::string> clang_args(const ArchInfo& arch, const std::vector<std::string>& dirs) {
  if (dirs.empty()) {
    throw std::runtime_error(arch.arch +
                             ": no Debian 12 package installs this arch's uapi headers; give a "
                             "header tree with --include-dir " +
                             arch.arch + "=DIR (tools/kernel_headers.sh fetches one)");
  }
  std::vector<std::string> args = {"-x", "c", "-std=gnu11", "--target=" + arch.triple, "-nostdinc"};
  for (const auto& d : dirs) args.push_back("-I" + d);
  return args;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += w + " ";
  return s;
}

// Pass 1: the macros of our two headers, and which of them are ioctls.
MacroSet read_macros(const std::string& includes, const std::vector<std::string>& args,
                     const ArchInfo& arch, const ParseOptions& options,
                     const std::vector<std::string>& dirs) {
  MacroSet set;
  {
    TranslationUnit tu(includes, args);
    auto errors = tu.errors_in_headers();
    if (!errors.empty()) {
      std::string msg = "the headers do not parse for " + arch.triple + ":";
      for (const auto& e : errors) msg += "\n  " + e;
      throw std::runtime_error(msg);
    }
    set.list = collect_macros(tu);
  }
  if (set.list.empty()) {
    throw std::runtime_error("no macros found in " + options.header +
                             " (searched: " + joined(dirs) + ")");
  }
  for (const auto& m : set.list) set.by_name.emplace(m.name, &m);
  set.invocations.resize(set.list.size());
  for (std::size_t i = 0; i < set.list.size(); ++i) {
    const MacroInfo& m = set.list[i];
    if (m.function_like || m.body.empty() || m.name[0] == '_') continue;
    set.invocations[i] = ioctl_invocation(m, set.by_name);
    if (!set.invocations[i]) refuse_unrecognised_ioctl(m);
  }
  return set;
}

// Pass 2's source: the same headers plus one declaration per macro, which clang evaluates, and
// a typedef of each ioctl's argument type.
std::string probe_source(const std::string& includes, const MacroSet& macros) {
  std::string probe = includes;
  for (std::size_t i = 0; i < macros.list.size(); ++i) {
    const MacroInfo& m = macros.list[i];
    if (m.function_like || m.body.empty() || m.name[0] == '_') continue;
    probe += "static const __auto_type kvmgen_v_" + std::to_string(i) + " = (" + m.name + ");\n";
    if (macros.invocations[i]) {
      auto a = invocation_args(*macros.invocations[i]);
      if (a.size() >= 3) probe += "typedef " + a[2] + " kvmgen_t_" + std::to_string(i) + ";\n";
    }
  }
  return probe +
         "#ifdef LINUX_VERSION_CODE\nstatic const __auto_type kvmgen_version = "
         "LINUX_VERSION_CODE;\n#endif\n";
}

// What clang made of the probe: values, argument types, records and enumerators.
Evaluated evaluate(const TranslationUnit& tu, Model& model) {
  Evaluated out;
  auto& values = out.values;
  auto& arg_types = out.arg_types;
  auto& enum_consts = out.enum_consts;
  auto find_records = [&](CXCursor c) {
    CXCursorKind k = clang_getCursorKind(c);
    if (is_record_kind(k) && clang_isCursorDefinition(c) && !clang_Cursor_isAnonymous(c) &&
        !our_file(location_of(c).path).empty()) {
      out.record_defs.push_back(c);
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

  return out;
}

}  // namespace

Model build_model(const ParseOptions& options, const Rules& rules) {
  const ArchInfo& arch = arch_info(options.arch);
  Model model;
  model.arch = arch.arch;
  model.triple = arch.triple;
  model.header = options.header;
  model.source = options.source;

  const auto& dirs =
      options.include_dirs.empty() ? arch.default_include_dirs : options.include_dirs;
  const std::vector<std::string> args = clang_args(arch, dirs);
  const std::string includes =
      "#include <" + options.header +
      ">\n#if __has_include(<linux/version.h>)\n#include <linux/version.h>\n"
      "#endif\n" +
      options.extra_source + "\n";

  MacroSet macros = read_macros(includes, args, arch, options, dirs);
  TranslationUnit tu(probe_source(includes, macros), args);
  Evaluated evaluated = evaluate(tu, model);

  // Records, in source order, with named nested ones hoisted before their parents.
  RecordBuilder records(model, dirs);
  for (CXCursor c : evaluated.record_defs) records.add_named(c);
  check_asm_is_for(arch, model, macros.list);

  add_ioctls(model, arch, macros, evaluated, records, rules);
  add_constants(model, macros, evaluated);
  assign_families(model, rules);
  return model;
}

}  // namespace kvmgen

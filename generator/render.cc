#include "generator/render.h"

#include "generator/arch.h"
#include "generator/model_json.h"

#include <kainjow/mustache.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "generator/naming.h"

namespace kvmgen {
namespace {

namespace fs = std::filesystem;
using kainjow::mustache::data;
using kainjow::mustache::mustache;
using kainjow::mustache::partial;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read template " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

data flag(bool b) { return b ? data(data::type::bool_true) : data(data::type::bool_false); }

// Marks the last element of a list so templates can place separators (JSON commas).
void push(data& list, data item, bool last, const char* comma = ",") {
  item.set("comma", last ? "" : comma);
  list.push_back(item);
}

// A Mustache list of make(item) for each item, each with "comma" set to `comma` but the last.
template <class T, class F>
data list_of(const std::vector<T>& items, F&& make, const char* comma = ",") {
  data list{data::type::list};
  for (std::size_t i = 0; i < items.size(); ++i)
    push(list, make(items[i]), i + 1 == items.size(), comma);
  return list;
}

const std::set<std::string>& cpp_keywords() {
  static const std::set<std::string> k = {
      "alignas",  "alignof",  "and",      "asm",      "auto",     "bool",      "break",
      "case",     "catch",    "char",     "class",    "const",    "constexpr", "continue",
      "default",  "delete",   "do",       "double",   "else",     "enum",      "explicit",
      "export",   "extern",   "false",    "float",    "for",      "friend",    "goto",
      "if",       "inline",   "int",      "long",     "mutable",  "namespace", "new",
      "noexcept", "not",      "nullptr",  "operator", "or",       "private",   "protected",
      "public",   "register", "return",   "short",    "signed",   "sizeof",    "static",
      "struct",   "switch",   "template", "this",     "throw",    "true",      "try",
      "typedef",  "typeid",   "typename", "union",    "unsigned", "using",     "virtual",
      "void",     "volatile", "while",    "xor",      "concept",  "requires",  "co_await",
      "co_yield", "co_return"};
  return k;
}

// The C++ spelling of a C field name: C++ keywords get a trailing underscore.
std::string cpp_field_name(const std::string& c) { return cpp_keywords().count(c) ? c + "_" : c; }

// X_SHIFT, X_MASK, X_MAX and X_VALID_*: constants that describe a family's bit layout rather
// than being one of its values.
bool is_layout_helper(const std::string& name) {
  return ends_with(name, "_SHIFT") || ends_with(name, "_MASK") || ends_with(name, "_MAX") ||
         name.find("_VALID_") != std::string::npos;
}

std::string scope_expr(unsigned scopes) {
  std::string out;
  for (const ScopeName& n : kScopeNames) {
    if (scopes & n.bit) out += std::string(out.empty() ? "" : " | ") + "Scope::" + n.cpp;
  }
  return out;
}

// The entry of kScopeNames for one scope bit.
const ScopeName& scope_name(unsigned scope) {
  for (const ScopeName& n : kScopeNames) {
    if (n.bit == scope) return n;
  }
  throw std::logic_error("scope_name: not one scope bit: " + std::to_string(scope));
}

data scope_names(unsigned scopes) {
  return list_of(scope_words(scopes), [](const std::string& w) {
    data d;
    d.set("scope", w);
    return d;
  });
}

struct RecordWalk {
  data asserts{data::type::list};      // offsetof checks of our own type
  data crosschecks{data::type::list};  // pairs of (our path, C path) for the cross-check test
  data bitfields{data::type::list};
};

data dims_list(const std::vector<std::uint64_t>& dims) {
  return list_of(dims, [](std::uint64_t n) {
    data d;
    d.set("dim", std::to_string(n));
    return d;
  });
}

// Field declarations for the `_fields` partial, plus every assertion for the record.
data fields_data(const Record& rec, const std::string& cpp_prefix, const std::string& c_prefix,
                 std::uint64_t base_bits, const std::string& indent, RecordWalk& walk) {
  data list{data::type::list};
  for (std::size_t fi = 0; fi < rec.fields.size(); ++fi) {
    const Field& f = rec.fields[fi];
    data d;
    std::string cpp_name = cpp_field_name(f.name);
    d.set("name", cpp_name);
    d.set("has_name", flag(!f.name.empty()));
    d.set("c_name", f.name);
    d.set("indent", indent);
    d.set("dims", dims_list(f.dims));
    d.set("omitted", flag(f.omitted));
    d.set("has_note", flag(!f.note.empty()));
    d.set("note", f.note);
    d.set("has_bits", flag(f.bit_width >= 0));
    d.set("bits", std::to_string(std::max(f.bit_width, 0)));
    d.set("has_align", flag(f.explicit_align > 0));
    d.set("align", std::to_string(f.explicit_align));
    d.set("renamed", flag(cpp_name != f.name));
    std::uint64_t abs_bits = base_bits + f.offset_bits;
    std::string cpp_path = f.name.empty() ? cpp_prefix : cpp_prefix + cpp_name;
    std::string c_path = f.name.empty() ? c_prefix : c_prefix + f.name;
    if (!f.omitted && !f.name.empty()) {
      if (f.bit_width >= 0) {
        data b;
        b.set("path", cpp_path);
        b.set("c_path", c_path);
        b.set("bits", std::to_string(f.bit_width));
        b.set("offset_bits", std::to_string(abs_bits));
        walk.bitfields.push_back(b);
      } else {
        data a;
        a.set("path", cpp_path);
        a.set("c_path", c_path);
        a.set("offset", std::to_string(abs_bits / 8));
        walk.asserts.push_back(a);
      }
    }
    if (f.nested) {
      const Record& n = *f.nested;
      data nd;
      nd.set("keyword", n.is_union ? "union" : "struct");
      nd.set("packed", flag(n.packed));
      nd.set("indent", indent);
      std::string sub_cpp = cpp_path, sub_c = c_path;
      if (!f.name.empty()) {
        for (std::size_t i = 0; i < f.dims.size(); ++i) {
          sub_cpp += "[0]";
          sub_c += "[0]";
        }
        sub_cpp += ".";
        sub_c += ".";
      }
      nd.set("fields", fields_data(n, sub_cpp, sub_c, abs_bits, indent + "  ", walk));
      d.set("nested", nd);
      d.set("is_nested", flag(!f.omitted));
      d.set("type", "");
      d.set("plain", flag(false));
    } else {
      d.set("is_nested", flag(false));
      d.set("type", f.cpp_type);
      d.set("plain", flag(!f.omitted));
    }
    d.set("offset_bits", std::to_string(f.offset_bits));
    d.set("size", std::to_string(f.size));
    d.set("flexible", flag(f.flexible));
    push(list, d, fi + 1 == rec.fields.size());
  }
  return list;
}

data record_data(const Record& rec) {
  data d;
  d.set("name", rec.name);
  d.set("keyword", rec.is_union ? "union" : "struct");
  d.set("packed", flag(rec.packed));
  d.set("has_align", flag(rec.explicit_align > 0));
  d.set("align", std::to_string(rec.explicit_align));
  d.set("size", std::to_string(rec.size));
  d.set("alignment", std::to_string(rec.align));
  d.set("empty_in_c", flag(rec.empty_in_c));
  d.set("has_note", flag(!rec.note.empty()));
  d.set("note", rec.note);
  d.set("file", rec.file);
  d.set("line", std::to_string(rec.line));
  RecordWalk walk;
  d.set("fields", fields_data(rec, "", "", 0, "  ", walk));
  d.set("asserts", walk.asserts);
  d.set("bitfields", walk.bitfields);
  d.set("has_bitfields", flag(!walk.bitfields.is_empty_list()));
  return d;
}

std::string value_literal(const IntValue& v, bool flags, const std::string& underlying) {
  if (v.negative()) {
    if (v.bits == (1ull << 63)) return "(-9223372036854775807 - 1)";
    return v.to_string();
  }
  std::string s = flags ? hex(v.bits) : std::to_string(v.bits);
  if (underlying == "std::uint64_t" || underlying == "std::int64_t") s += "ull";
  return s;
}

data model_data(const Model& m) {
  data root;
  root.set("arch", m.arch);
  root.set("triple", m.triple);
  root.set("header", m.header);
  root.set("linux_version", m.linux_version);
  root.set("source", m.source);
  root.set("target_condition", arch_info(m.arch).target_condition);

  root.set("families", list_of(m.families, [&](const Family& f) {
             data d;
             d.set("name", f.name);
             d.set("name_length", std::to_string(f.name.size()));
             d.set("is_flags", flag(f.kind == FamilyKind::Flags));
             d.set("kind", f.kind == FamilyKind::Flags ? "flags" : "enum");
             d.set("underlying", f.underlying);
             d.set("rule", f.rule);
             d.set("count", std::to_string(f.members.size()));
             std::set<std::uint64_t> seen;
             std::vector<const Constant*> members;
             for (std::size_t i : f.members) members.push_back(&m.constants[i]);
             // to_string() returns the first entry with a value; field-layout helpers (X_SHIFT,
             // X_MASK, X_MAX, X_VALID_*) often share a value with a real member, so they go last in
             // the table.
             std::vector<const Constant*> entries;
             for (int pass = 0; pass < 2; ++pass) {
               for (const Constant* c : members) {
                 if (is_layout_helper(c->name) == (pass == 1)) entries.push_back(c);
               }
             }
             d.set("entries", list_of(entries, [&](const Constant* c) {
                     data e;
                     e.set("cpp_name", c->cpp_name);
                     e.set("c_name", c->name);
                     e.set("c_name_length", std::to_string(c->name.size()));
                     return e;
                   }));
             d.set("members", list_of(members, [&](const Constant* c) {
                     data e;
                     e.set("cpp_name", c->cpp_name);
                     e.set("c_name", c->name);
                     e.set("value",
                           value_literal(c->value, f.kind == FamilyKind::Flags, f.underlying));
                     e.set("check_value", hex(c->value.bits) + "ull");
                     e.set("file", c->file);
                     e.set("line", std::to_string(c->line));
                     e.set("alias", flag(!seen.insert(c->value.bits).second));
                     return e;
                   }));
             return d;
           }));

  std::vector<const Constant*> plain;
  for (const Constant& c : m.constants) {
    if (c.family.empty()) plain.push_back(&c);
  }
  root.set("constants", list_of(plain, [](const Constant* c) {
             data d;
             d.set("cpp_name", c->cpp_name);
             d.set("c_name", c->name);
             d.set("type", c->value.is_signed ? "std::int64_t" : "std::uint64_t");
             d.set("value",
                   value_literal(c->value, false, c->value.is_signed ? "" : "std::uint64_t"));
             d.set("check_value", hex(c->value.bits) + "ull");
             d.set("file", c->file);
             d.set("line", std::to_string(c->line));
             return d;
           }));

  std::size_t usable = 0;
  for (const Ioctl& io : m.ioctls) usable += io.available && !io.deprecated;
  root.set("ioctl_count", std::to_string(m.ioctls.size()));
  root.set("usable_ioctl_count", std::to_string(usable));
  std::size_t ioctl_index = 0;
  root.set("ioctls", list_of(m.ioctls, [&](const Ioctl& io) {
             data d;
             d.set("index", std::to_string(ioctl_index++));
             d.set("cpp_name", io.cpp_name);
             d.set("name", io.name);
             d.set("available", flag(io.available));
             d.set("deprecated", flag(io.deprecated));
             d.set("usable", flag(io.available && !io.deprecated));
             d.set("unavailable_reason", io.unavailable_reason);
             d.set("request", io.request ? hex(*io.request) : "0");
             d.set("direction", direction_name(io.dir));
             d.set("has_arg", flag(!io.arg_c_type.empty()));
             d.set("arg_type", io.available && !io.arg_cpp_type.empty() ? io.arg_cpp_type : "void");
             d.set("arg_c_type", io.arg_c_type);
             d.set("arg_size", std::to_string(io.arg_size));
             d.set("scopes", scope_expr(io.scopes));
             d.set("scope_list", scope_names(io.scopes));
             d.set("has_cap", flag(!io.gating_cap.empty()));
             d.set("cap_c", io.gating_cap);
             d.set("cap_source", io.cap_source);
             d.set("cap_cpp", camel_case(io.gating_cap, "KVM_CAP_"));
             d.set("has_scope_caps", flag(!io.scope_caps.empty()));
             d.set("scope_caps", list_of(
                                     io.scope_caps,
                                     [](const auto& scope_cap) {
                                       const auto& [scope, cap] = scope_cap;
                                       data c;
                                       c.set("scope_cpp", scope_name(scope).cpp);
                                       c.set("scope", scope_name(scope).word);
                                       c.set("has_cap", flag(!cap.empty()));
                                       c.set("cap_c", cap);
                                       c.set("cap_cpp", camel_case(cap, "KVM_CAP_"));
                                       return c;
                                     },
                                     ", "));
             d.set("file", io.file);
             d.set("line", std::to_string(io.line));
             return d;
           }));

  std::vector<const Record*> recs;
  for (const auto& r : m.records) recs.push_back(r.get());
  root.set("record_count", std::to_string(recs.size()));
  root.set("records", list_of(recs, [](const Record* r) { return record_data(*r); }));
  return root;
}

}  // namespace

Rendered render_all(const Model& model, const std::string& template_dir) {
  std::vector<fs::path> templates;
  std::map<std::string, std::string> partials;
  if (!fs::is_directory(template_dir)) {
    throw std::runtime_error("template directory " + template_dir + " does not exist");
  }
  for (const auto& e : fs::recursive_directory_iterator(template_dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".mustache") continue;
    std::string stem = e.path().stem().string();
    if (stem[0] == '_') {
      partials[stem.substr(1)] = read_file(e.path());
    } else {
      templates.push_back(e.path());
    }
  }
  std::sort(templates.begin(), templates.end());
  if (templates.empty()) throw std::runtime_error("no templates in " + template_dir);

  data root = model_data(model);
  for (const auto& [name, text] : partials) {
    std::string copy = text;
    root.set(name, data(partial([copy]() { return copy; })));
  }
  Rendered out;
  for (const fs::path& p : templates) {
    mustache tmpl(read_file(p));
    if (!tmpl.is_valid()) {
      throw std::runtime_error("template " + p.string() + ": " + tmpl.error_message());
    }
    tmpl.set_custom_escape([](const std::string& s) { return s; });  // C++, not HTML
    std::string text = tmpl.render(root);
    if (!tmpl.is_valid()) {
      throw std::runtime_error("template " + p.string() + ": " + tmpl.error_message());
    }
    std::string rel = p.lexically_relative(template_dir).replace_extension("").string();
    out[rel] = text;
  }
  // The model itself is data, not text to lay out: it is written by generator/model_json.cc.
  out["kvm_api.json"] = model_to_json(model);
  return out;
}

}  // namespace kvmgen

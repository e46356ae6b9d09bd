#include "generator/api_diff.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace kvmgen {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A document's members, checked on access so that a file that is not a kvm_api.json gets an
// error naming what is missing rather than a nlohmann exception.
class Doc {
 public:
  Doc(const std::string& text, const std::string& label) : label_(label) {
    try {
      root_ = json::parse(text);
    } catch (const json::parse_error& e) {
      throw std::runtime_error(label + ": not valid JSON: " + e.what());
    }
    if (!root_.is_object() || root_.value("generated_by", "") != "kvmgen") {
      throw std::runtime_error(label + ": not a kvm_api.json written by kvmgen");
    }
  }
  const json& list(const char* key) const { return member(root_, key, json::value_t::array); }
  std::string text(const char* key) const {
    return member(root_, key, json::value_t::string).get<std::string>();
  }
  const json& member(const json& obj, const char* key, json::value_t type) const {
    auto it = obj.find(key);
    bool ok = it != obj.end() &&
              (it->type() == type || (type == json::value_t::number_unsigned && it->is_number()));
    if (!ok) {
      throw std::runtime_error(label_ +
                               ": malformed kvm_api.json: " + obj.value("name", "document") +
                               " lacks \"" + key + "\" of the expected type");
    }
    return *it;
  }
  std::string str(const json& obj, const char* key) const {
    return member(obj, key, json::value_t::string).get<std::string>();
  }
  std::uint64_t num(const json& obj, const char* key) const {
    return member(obj, key, json::value_t::number_unsigned).get<std::uint64_t>();
  }

 private:
  std::string label_;
  json root_;
};

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

std::string bytes(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

// "at byte 8", or "at bit 3" for offsets inside a byte (bitfields).
std::string at(std::uint64_t offset_bits) {
  if (offset_bits % 8) return "at bit " + std::to_string(offset_bits);
  return "at byte " + std::to_string(offset_bits / 8);
}

class Differ {
 public:
  Differ(const Doc& o, const Doc& n, ApiDiff& out) : old_(o), new_(n), out_(out) {}

  void run() {
    const ConstList olds = constant_list(old_), news = constant_list(new_);
    constants(olds, news);
    new_family_hints(olds, news);
    ioctls();
    records();
  }

 private:
  void add(std::string area, std::string name, std::string change, std::string old_value,
           std::string new_value, std::string detail, bool breaking) {
    out_.changes.push_back({std::move(area), std::move(name), std::move(change),
                            std::move(old_value), std::move(new_value), std::move(detail),
                            breaking});
  }

  // Family members and plain constants, keyed by C name. A constant that changes family (a new
  // rule, say) changes its C++ type, which breaks code naming it.
  struct Const {
    std::string area, cpp_name, value;
  };
  using ConstList = std::vector<std::pair<std::string, Const>>;
  ConstList constant_list(const Doc& d) {
    ConstList out;
    for (const json& f : d.list("families")) {
      std::string family = d.str(f, "name");
      for (const json& m : d.member(f, "members", json::value_t::array)) {
        out.push_back({d.str(m, "name"),
                       {family, d.str(m, "cpp_name"),
                        d.member(m, "value", json::value_t::number_unsigned).dump()}});
      }
    }
    for (const json& c : d.list("constants")) {
      out.push_back({d.str(c, "name"),
                     {"constant", d.str(c, "cpp_name"),
                      d.member(c, "value", json::value_t::number_unsigned).dump()}});
    }
    return out;
  }

  // New plain constants that share a prefix which no family uses are probably a family the
  // rules do not know yet (a new kind of flag word, say): say so rather than let them pass as
  // unrelated integers.
  void new_family_hints(const ConstList& olds, const ConstList& news) {
    std::set<std::string> old_names;
    for (const auto& [name, c] : olds) old_names.insert(name);
    auto prefix_of = [](const std::string& name) {
      auto cut = name.rfind('_');
      return cut == std::string::npos || cut == 0 ? std::string() : name.substr(0, cut + 1);
    };
    std::set<std::string> family_prefixes;  // prefixes some family member of NEW has
    for (const auto& [name, c] : news) {
      if (c.area == "constant") continue;
      for (auto cut = name.find('_'); cut != std::string::npos; cut = name.find('_', cut + 1))
        family_prefixes.insert(name.substr(0, cut + 1));
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // in model order
    for (const auto& [name, c] : news) {
      if (c.area != "constant" || old_names.count(name)) continue;
      std::string prefix = prefix_of(name);
      if (prefix.empty() || prefix == "KVM_" || family_prefixes.count(prefix)) continue;
      auto g = std::find_if(groups.begin(), groups.end(),
                            [&](const auto& e) { return e.first == prefix; });
      if (g == groups.end()) {
        groups.push_back({prefix, {}});
        g = std::prev(groups.end());
      }
      g->second.push_back(name);
    }
    for (const auto& [prefix, names] : groups) {
      if (names.size() < 2) continue;
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      out_.hints.push_back(std::to_string(names.size()) + " new constants share the prefix " +
                           prefix + " and no family (" + list +
                           "): if they are one family of values or flags, give them a rule in "
                           "generator/families.rules; until then they are plain constants in "
                           "kvm::abi::consts");
    }
  }

  void constants(const ConstList& olds, const ConstList& news) {
    std::map<std::string, Const> old_by(olds.begin(), olds.end()), new_by(news.begin(), news.end());
    // Reported grouped by area, areas in the new model's order, then areas only the old has.
    std::vector<std::string> areas;
    auto note_area = [&](const std::string& a) {
      if (std::find(areas.begin(), areas.end(), a) == areas.end()) areas.push_back(a);
    };
    for (const auto& [name, c] : news) note_area(c.area);
    for (const auto& [name, c] : olds) note_area(c.area);
    for (const std::string& area : areas) {
      for (const auto& [name, c] : news) {
        if (c.area != area) continue;
        auto o = old_by.find(name);
        if (o == old_by.end()) {
          // Plain constants live in kvm::abi::consts.
          std::string scope = area == "constant" ? "consts" : area;
          add(area, name, "added", "", c.value, scope + "::" + c.cpp_name + " = " + c.value, false);
        } else if (o->second.area != c.area) {
          add(area, name, "regrouped", o->second.area, c.area,
              "moved from " + o->second.area + " to " + c.area + " (its C++ type changes)", true);
        } else if (o->second.value != c.value) {
          add(area, name, "renumbered", o->second.value, c.value,
              o->second.value + " -> " + c.value, true);
        } else if (o->second.cpp_name != c.cpp_name) {
          add(area, name, "renamed", o->second.cpp_name, c.cpp_name,
              "C++ name " + o->second.cpp_name + " -> " + c.cpp_name, true);
        }
      }
      for (const auto& [name, c] : olds) {
        if (c.area == area && !new_by.count(name)) {
          add(area, name, "removed", c.value, "", "was " + c.value, true);
        }
      }
    }
  }

  std::string ioctl_shape(const Doc& d, const json& io) {
    std::string arg = d.str(io, "arg_c_type");
    std::string s = d.str(io, "direction") + " nr " + hex(d.num(io, "nr"));
    if (!arg.empty()) s += ", " + arg + " (" + bytes(d.num(io, "arg_size")) + ")";
    auto req = io.find("request");
    if (req == io.end())
      throw std::runtime_error("malformed kvm_api.json: ioctl lacks \"request\"");
    s += req->is_number() ? ", request " + hex(req->get<std::uint64_t>()) : ", unavailable";
    return s;
  }

  // The KVM_CAP_* an ioctl's comment names, or "".
  // "KVM_CAP_X", or "vcpu: KVM_CAP_X, vm: KVM_CAP_Y" where it depends on the fd kind.
  static std::string capability(const json& io) {
    auto by_scope = io.find("capability_by_scope");
    if (by_scope != io.end() && by_scope->is_object() && !by_scope->empty()) {
      std::string out;
      for (const auto& [scope, cap] : by_scope->items()) {
        out += (out.empty() ? "" : ", ") + scope + ": " +
               (cap.is_string() ? cap.get<std::string>() : std::string("none"));
      }
      return out;
    }
    auto it = io.find("capability");
    return it != io.end() && it->is_string() ? it->get<std::string>() : "";
  }

  std::set<std::string> scopes(const Doc& d, const json& io) {
    std::set<std::string> out;
    for (const json& s : d.member(io, "scopes", json::value_t::array))
      out.insert(s.get<std::string>());
    return out;
  }

  void ioctls() {
    std::map<std::string, const json*> old_by, new_by;
    for (const json& io : old_.list("ioctls")) old_by[old_.str(io, "name")] = &io;
    for (const json& io : new_.list("ioctls")) new_by[new_.str(io, "name")] = &io;
    for (const json& n : new_.list("ioctls")) {
      std::string name = new_.str(n, "name");
      auto it = old_by.find(name);
      if (it == old_by.end()) {
        add("ioctl", name, "added", "", ioctl_shape(new_, n), ioctl_shape(new_, n), false);
        continue;
      }
      const json& o = *it->second;
      std::string os = ioctl_shape(old_, o), ns = ioctl_shape(new_, n);
      bool was = o.value("available", false), is = n.value("available", false);
      if (was && !is) {
        add("ioctl", name, "unavailable", os, ns,
            "no longer available: " + n.value("unavailable_reason", std::string()), true);
      } else if (!was && is) {
        add("ioctl", name, "available", os, ns, "now available: " + ns, false);
      } else if (o.at("request") != n.at("request")) {
        add("ioctl", name, "renumbered", os, ns, os + " -> " + ns, true);
      } else if (old_.str(o, "arg_c_type") != new_.str(n, "arg_c_type")) {
        add("ioctl", name, "argument changed", old_.str(o, "arg_c_type"), new_.str(n, "arg_c_type"),
            "argument " + old_.str(o, "arg_c_type") + " -> " + new_.str(n, "arg_c_type"), true);
      }
      if (!o.value("deprecated", false) && n.value("deprecated", false)) {
        add("ioctl", name, "deprecated", "", "", "now only a deprecated alias", true);
      }
      std::string co = capability(o), cn = capability(n);
      if (co != cn) {
        add("ioctl", name, "capability changed", co, cn,
            "gating capability " + (co.empty() ? "none" : co) + " -> " + (cn.empty() ? "none" : cn),
            false);
      }
      auto so = scopes(old_, o), sn = scopes(new_, n);
      if (so != sn) {
        auto join = [](const std::set<std::string>& s) {
          std::string out;
          for (const auto& x : s) out += (out.empty() ? "" : ",") + x;
          return out;
        };
        bool lost = std::any_of(so.begin(), so.end(), [&](const auto& s) { return !sn.count(s); });
        add("ioctl", name, "scopes changed", join(so), join(sn),
            "fds " + join(so) + " -> " + join(sn), lost);
      }
    }
    for (const json& o : old_.list("ioctls")) {
      std::string name = old_.str(o, "name");
      if (!new_by.count(name)) {
        add("ioctl", name, "removed", ioctl_shape(old_, o), "", "was " + ioctl_shape(old_, o),
            true);
      }
    }
  }

  // One member of a record, flattened: leaves under their C access path (anonymous members are
  // transparent, as in C), nested records also as entries of their own.
  struct Flat {
    std::string path;
    bool nested = false;
    std::string kind;  // "union"/"struct" for nested records, else the C++ element type
    std::uint64_t offset_bits = 0, size = 0;
    std::string dims;
    std::string bit_width;
    std::vector<std::string> members;  // for nested records: every entry inside, recursively
  };

  void flatten(const Doc& d, const json& fields, const std::string& prefix, std::uint64_t base_bits,
               std::vector<Flat>& out, std::vector<std::size_t>& open) {
    std::map<std::string, int> anonymous;  // per kind, to name anonymous members stably
    for (const json& f : fields) {
      Flat e;
      std::string name = d.str(f, "name");
      e.offset_bits = base_bits + d.num(f, "offset_bits");
      e.size = d.num(f, "size");
      e.dims = f.at("dims").dump();
      e.bit_width = f.at("bit_width").dump();
      auto rec = f.find("record");
      if (rec != f.end()) {
        e.nested = true;
        e.kind = d.str(*rec, "kind");
        e.path = name.empty() ? prefix + "(anonymous " + e.kind + " #" +
                                    std::to_string(++anonymous[e.kind]) + ")"
                              : prefix + name;
      } else {
        e.kind = d.str(f, "type");
        // Unnamed bitfields (`__u64 : 58;` padding, as in s390's kvm_s390_vm_cpu_uv_feat) get
        // a stable name of their own, or two of them would share one path.
        e.path = name.empty() ? prefix + "(unnamed bitfield #" +
                                    std::to_string(++anonymous["bitfield"]) + ")"
                              : prefix + name;
      }
      for (std::size_t i : open) out[i].members.push_back(e.path);
      out.push_back(e);
      if (rec != f.end()) {
        open.push_back(out.size() - 1);
        std::string inner = name.empty() ? prefix : prefix + name + ".";
        flatten(d, d.member(*rec, "fields", json::value_t::array), inner, e.offset_bits, out, open);
        open.pop_back();
      }
    }
  }

  std::vector<Flat> flat(const Doc& d, const json& rec) {
    std::vector<Flat> out;
    std::vector<std::size_t> open;
    flatten(d, d.member(rec, "fields", json::value_t::array), "", 0, out, open);
    return out;
  }

  static std::string describe(const Flat& f) {
    std::string type = f.nested ? f.kind : f.kind + (f.dims == "[]" ? "" : f.dims);
    std::string s = type + " " + at(f.offset_bits) + ", ";
    if (f.bit_width != "null") return s + f.bit_width + " bits";
    return s + bytes(f.size);
  }

  void record_pair(const std::string& name, const json& o, const json& n) {
    std::string kind = new_.str(n, "kind");
    if (old_.str(o, "kind") != kind) {
      add("record", name, "reshaped", old_.str(o, "kind"), kind,
          old_.str(o, "kind") + " -> " + kind, true);
    }
    if (old_.num(o, "size") != new_.num(n, "size")) {
      add("record", name, "resized", std::to_string(old_.num(o, "size")),
          std::to_string(new_.num(n, "size")),
          bytes(old_.num(o, "size")) + " -> " + bytes(new_.num(n, "size")), true);
    }
    if (old_.num(o, "align") != new_.num(n, "align")) {
      add("record", name, "realigned", std::to_string(old_.num(o, "align")),
          std::to_string(new_.num(n, "align")),
          "alignment " + std::to_string(old_.num(o, "align")) + " -> " +
              std::to_string(new_.num(n, "align")),
          true);
    }
    auto of = flat(old_, o), nf = flat(new_, n);
    std::map<std::string, const Flat*> ob, nb;
    for (const Flat& f : of) ob[f.path] = &f;
    for (const Flat& f : nf) nb[f.path] = &f;
    std::map<std::string, bool> changed;  // path -> breaking
    std::vector<ApiChange> lines;
    auto field = [&](const std::string& path, std::string change, std::string ov, std::string nv,
                     std::string detail, bool breaking) {
      changed[path] = breaking;
      lines.push_back({"record", name + "." + path, std::move(change), std::move(ov), std::move(nv),
                       std::move(detail), breaking});
    };
    for (const Flat& f : nf) {
      auto it = ob.find(f.path);
      if (it == ob.end()) {
        field(f.path, "field added", "", describe(f), describe(f), false);
        continue;
      }
      const Flat& was = *it->second;
      if (was.nested != f.nested || (was.kind != f.kind && !(was.nested && f.nested))) {
        field(f.path, "type changed", describe(was), describe(f),
              describe(was) + " -> " + describe(f), true);
      } else {
        bool moved = was.offset_bits != f.offset_bits;
        bool resized = was.size != f.size || was.dims != f.dims || was.bit_width != f.bit_width;
        if (moved || resized) {
          field(f.path,
                moved && resized ? "moved and resized"
                : moved          ? "moved"
                                 : "resized",
                describe(was), describe(f), describe(was) + " -> " + describe(f), true);
        }
      }
    }
    for (const Flat& f : of) {
      if (!nb.count(f.path))
        field(f.path, "field removed", describe(f), "", "was " + describe(f), true);
    }
    // A nested record whose members changed is reported as reshaped, with what changed in it,
    // ahead of the member lines: "union kvm_run.(anonymous union #1) reshaped".
    for (const Flat& f : nf) {
      if (!f.nested || !ob.count(f.path) || ob[f.path]->kind != f.kind) continue;
      std::set<std::string> inside(f.members.begin(), f.members.end());
      inside.insert(ob[f.path]->members.begin(), ob[f.path]->members.end());
      std::string what;
      bool breaking = changed.count(f.path) && changed[f.path];
      for (const ApiChange& l : lines) {
        std::string path = l.name.substr(name.size() + 1);
        if (!inside.count(path)) continue;
        what += (what.empty() ? "" : ", ") + path + " " + l.change;
        breaking = breaking || l.breaking;
      }
      if (!what.empty()) {
        out_.changes.push_back(
            {"record", name + "." + f.path, f.kind + " reshaped", "", "", what, breaking});
      }
    }
    for (ApiChange& l : lines) out_.changes.push_back(std::move(l));
  }

  void records() {
    std::map<std::string, const json*> old_by, new_by;
    for (const json& r : old_.list("records")) old_by[old_.str(r, "name")] = &r;
    for (const json& r : new_.list("records")) new_by[new_.str(r, "name")] = &r;
    for (const json& n : new_.list("records")) {
      std::string name = new_.str(n, "name");
      auto it = old_by.find(name);
      std::string shape = new_.str(n, "kind") + ", " + bytes(new_.num(n, "size"));
      if (it == old_by.end()) {
        add("record", name, "added", "", shape, shape, false);
      } else {
        record_pair(name, *it->second, n);
      }
    }
    for (const json& o : old_.list("records")) {
      std::string name = old_.str(o, "name");
      if (!new_by.count(name)) {
        std::string shape = old_.str(o, "kind") + ", " + bytes(old_.num(o, "size"));
        add("record", name, "removed", shape, "", "was " + shape, true);
      }
    }
  }

  const Doc& old_;
  const Doc& new_;
  ApiDiff& out_;
};

}  // namespace

std::size_t ApiDiff::breaking() const {
  return static_cast<std::size_t>(
      std::count_if(changes.begin(), changes.end(), [](const ApiChange& c) { return c.breaking; }));
}

std::string read_api_json(const std::string& path) {
  fs::path p = path;
  if (fs::is_directory(p)) p /= "kvm_api.json";
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read " + p.string() +
                             " (give a kvm_api.json or a directory holding one, such as "
                             "generated/x86_64)");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ApiDiff diff_api(const std::string& old_json, const std::string& new_json,
                 const std::string& old_label, const std::string& new_label) {
  Doc o(old_json, old_label), n(new_json, new_label);
  ApiDiff diff;
  diff.old_side = {old_label, o.text("arch"), o.text("linux_version")};
  diff.new_side = {new_label, n.text("arch"), n.text("linux_version")};
  try {
    Differ(o, n, diff).run();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("malformed kvm_api.json (" + old_label + " or " + new_label +
                             "): " + e.what());
  }
  return diff;
}

std::string diff_to_text(const ApiDiff& diff) {
  std::ostringstream os;
  auto side = [](const ApiSide& s) {
    return s.label + " (" + s.arch + ", Linux " + s.linux_version + ")";
  };
  os << "kvmgen diff: " << side(diff.old_side) << " -> " << side(diff.new_side) << "\n";
  if (diff.old_side.arch != diff.new_side.arch) {
    os << "note: the two models are for different arches\n";
  }
  os << diff.changes.size() << " change(s), " << diff.breaking() << " breaking\n";
  std::string area;
  for (const ApiChange& c : diff.changes) {
    if (c.area != area) {
      area = c.area;
      os << area << ":\n";
    }
    char mark = c.change == "added" || c.change == "field added"       ? '+'
                : c.change == "removed" || c.change == "field removed" ? '-'
                                                                       : '~';
    os << "  " << mark << " " << c.name << " " << c.change << ": " << c.detail
       << (c.breaking ? "  [breaking]" : "") << "\n";
  }
  for (const std::string& h : diff.hints) os << "hint: " << h << "\n";
  return os.str();
}

std::string diff_to_json(const ApiDiff& diff) {
  using json = nlohmann::ordered_json;  // keys in the order written, for readers
  auto side = [](const ApiSide& s) {
    return json{{"path", s.label}, {"arch", s.arch}, {"linux_version", s.linux_version}};
  };
  json changes = json::array();
  for (const ApiChange& c : diff.changes) {
    auto opt = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
    changes.push_back(json{{"area", c.area},
                           {"name", c.name},
                           {"change", c.change},
                           {"old", opt(c.old_value)},
                           {"new", opt(c.new_value)},
                           {"detail", c.detail},
                           {"breaking", c.breaking}});
  }
  json doc = {{"old", side(diff.old_side)}, {"new", side(diff.new_side)},
              {"changes", changes.size()},  {"breaking", diff.breaking()},
              {"items", changes},           {"hints", diff.hints}};
  return doc.dump(2) + "\n";
}

}  // namespace kvmgen

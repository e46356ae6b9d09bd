// kvmgen on a fixture header written for the purpose (fixtures/basic): each construct the
// generator must handle, asserted in the model and in the rendered output, which must also
// compile with its own layout asserts.
#include <catch2/catch.hpp>

#include "tests/run_command.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "generator/parse.h"
#include "generator/render.h"

using namespace kvmgen;
namespace fs = std::filesystem;

namespace {

const std::string kFixture = "tests/generator/fixtures/basic";
// The scopes of the fixtures' own ioctls, over the project's rules.
const std::string kFixtureRules = "tests/generator/fixtures/rules";

const Model& fixture_model() {
  static const Model model = [] {
    ParseOptions o;
    o.arch = "x86_64";
    o.include_dirs = {kFixture};
    return build_model(o, load_rules({"generator", kFixtureRules}));
  }();
  return model;
}

const Record& record(const std::string& name) {
  const auto& recs = fixture_model().records;
  auto it = std::find_if(recs.begin(), recs.end(), [&](const auto& r) { return r->name == name; });
  REQUIRE(it != recs.end());
  return **it;
}

const Ioctl& ioctl(const std::string& name) {
  const auto& list = fixture_model().ioctls;
  auto it = std::find_if(list.begin(), list.end(), [&](const Ioctl& i) { return i.name == name; });
  REQUIRE(it != list.end());
  return *it;
}

std::vector<std::string> family_members(const std::string& family) {
  const Model& m = fixture_model();
  std::vector<std::string> out;
  for (const Family& f : m.families) {
    if (f.name != family) continue;
    for (std::size_t i : f.members)
      out.push_back(m.constants[i].name + "=" + m.constants[i].cpp_name);
  }
  return out;
}

std::string rendered(const std::string& file) {
  static const Rendered files = render_all(fixture_model(), "templates");
  auto it = files.find(file);
  REQUIRE(it != files.end());
  return it->second;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A copy of generator/*.rules in the test's temporary directory, for tests that add lines.
fs::path copy_of_rules(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  fs::path dir = fs::path(tmp) / name;
  fs::create_directories(dir);
  for (const char* f : {"families.rules", "ioctl_scopes.rules", "ioctl_caps.rules"})
    fs::copy_file(fs::path("generator") / f, dir / f, fs::copy_options::overwrite_existing);
  return dir;
}

}  // namespace

TEST_CASE("families are formed by rule; a new cap flows into Cap untouched") {
  using V = std::vector<std::string>;
  CHECK(family_members("Cap") ==
        V{"KVM_CAP_IRQCHIP=Irqchip", "KVM_CAP_HLT=Hlt", "KVM_CAP_FIXTURE_NEW=FixtureNew"});
  // KVM_EXIT_IO_IN shares the prefix but is an IO direction; X86_RDMSR stays an exit reason.
  CHECK(family_members("ExitReason") ==
        V{"KVM_EXIT_UNKNOWN=Unknown", "KVM_EXIT_IO=Io", "KVM_EXIT_X86_RDMSR=X86Rdmsr"});
  CHECK(family_members("IoDirection") == V{"KVM_EXIT_IO_IN=In", "KVM_EXIT_IO_OUT=Out"});
  CHECK(family_members("MemoryFlags") ==
        V{"KVM_MEM_LOG_DIRTY_PAGES=LogDirtyPages", "KVM_MEM_READONLY=Readonly"});
  // C enumerators, with the "#define X X" alias counted once.
  CHECK(family_members("DeviceType") ==
        V{"KVM_DEV_TYPE_FX_ONE=FxOne", "KVM_DEV_TYPE_FX_TWO=FxTwo"});
  const Model& m = fixture_model();
  auto api = std::find_if(m.constants.begin(), m.constants.end(),
                          [](const Constant& c) { return c.name == "KVM_API_VERSION"; });
  REQUIRE(api != m.constants.end());
  CHECK(api->family.empty());
  CHECK(api->value.bits == 12);
  CHECK(contains(rendered("kvm/abi/constants.h"), "  FixtureNew = 300,  // KVM_CAP_FIXTURE_NEW"));
  CHECK(contains(rendered("kvm/abi/constants.h"),
                 "inline constexpr std::int64_t ApiVersion = 12;  // KVM_API_VERSION"));
  CHECK(contains(rendered("kvm/abi/constants.h"),
                 "  LogDirtyPages = 0x1,  // KVM_MEM_LOG_DIRTY_PAGES"));
}

TEST_CASE("anonymous unions and structs keep their offsets and C access paths") {
  const Record& r = record("kvm_fx_anon");
  CHECK(r.size == 16);
  REQUIRE(r.fields.size() == 2);
  const Field& u = r.fields[1];
  CHECK(u.name.empty());
  REQUIRE(u.nested);
  CHECK(u.nested->is_union);
  CHECK(u.offset_bits == 64);
  REQUIRE(u.nested->fields.size() == 2);
  CHECK(u.nested->fields[1].name.empty());  // the anonymous struct inside
  std::string layout = rendered("kvm/abi/layout.h");
  CHECK(contains(layout, "static_assert(offsetof(kvm_fx_anon, hi) == 12"));
  CHECK(contains(layout, "static_assert(offsetof(kvm_fx_run, io.port) == 6"));
  CHECK(contains(rendered("kvm/abi/structs.h"),
                 "  union {\n    struct {\n      std::uint8_t direction;"));
  // The asserts are in layout.h only: structs.h is what every includer compiles.
  CHECK_FALSE(contains(rendered("kvm/abi/structs.h"), "static_assert"));
}

TEST_CASE("bitfields keep widths and bit offsets") {
  const Record& r = record("kvm_fx_bits");
  REQUIRE(r.fields.size() == 4);
  CHECK(r.fields[0].bit_width == 3);
  CHECK(r.fields[1].offset_bits == 3);
  CHECK(r.fields[2].offset_bits == 4);
  CHECK(r.fields[3].bit_width == -1);
  CHECK(r.fields[3].offset_bits == 16);
  CHECK(contains(rendered("kvm/abi/structs.h"), "  std::uint8_t mode : 3;"));
}

TEST_CASE("flexible arrays, including the __DECLARE_FLEX_ARRAY wrapper") {
  const Record& f = record("kvm_fx_flex");
  CHECK(f.size == 8);
  CHECK(f.fields[2].flexible);
  CHECK(f.fields[2].offset_bits == 64);
  const Record& m = record("kvm_fx_flex_macro");
  CHECK(m.size == 4);
  REQUIRE(m.fields.size() == 3);  // nent, the empty struct (omitted), items: hoisted
  CHECK(m.fields[1].omitted);
  CHECK(m.fields[2].name == "items");
  CHECK(m.fields[2].offset_bits == 32);
  std::string h = rendered("kvm/abi/structs.h");
  CHECK(contains(h, "  // __empty_items: member of an empty struct type"));
  CHECK(contains(rendered("kvm/abi/layout.h"),
                 "static_assert(offsetof(kvm_fx_flex_macro, items) == 4"));
}

TEST_CASE("packed, empty and zero-sized records") {
  const Record& p = record("kvm_fx_packed");
  CHECK(p.packed);
  CHECK(p.size == 9);
  CHECK(p.fields[1].offset_bits == 8);
  CHECK(record("kvm_fx_empty").empty_in_c);
  const Record& z = record("kvm_fx_zero_union");
  CHECK(z.size == 8);                // n, then the union aligned for its __u64 member, of size 0
  CHECK_FALSE(z.fields[1].omitted);  // a union of zero-length arrays is zero-sized in C++ too
  std::string h = rendered("kvm/abi/structs.h");
  CHECK(contains(h, "struct __attribute__((packed)) kvm_fx_packed {"));
  CHECK_FALSE(contains(h, "sizeof(kvm_fx_empty)"));
}

TEST_CASE("ioctls: numbers, directions, argument types, scopes, availability") {
  const Ioctl& missing = ioctl("KVM_FX_MISSING");
  CHECK_FALSE(missing.available);
  CHECK(contains(missing.unavailable_reason, "struct kvm_not_defined_here"));
  CHECK_FALSE(missing.request.has_value());
  const Ioctl& flex = ioctl("KVM_FX_GET_FLEX");
  CHECK(flex.dir == Direction::ReadWrite);
  CHECK(flex.scopes == kVcpu);
  CHECK(flex.gating_cap == "KVM_CAP_HLT");
  CHECK(flex.arg_cpp_type == "kvm_fx_flex");
  CHECK(flex.request == ((3ull << 30) | (8ull << 16) | (0xAEull << 8) | 0x80));
  CHECK(ioctl("KVM_FX_GET_U64").arg_cpp_type == "std::uint64_t");
  CHECK(ioctl("KVM_FX_GET_U64").gating_cap == "KVM_CAP_HLT");  // same block as the comment
  CHECK(ioctl("KVM_FX_UNGATED").gating_cap.empty());           // a comment of its own comes between
  CHECK(ioctl("KVM_FX_SET_ANON").scopes == kVm);
  CHECK(ioctl("KVM_GET_API_VERSION").scopes == kSystem);
  CHECK(ioctl("KVM_CHECK_EXTENSION").scopes == (kSystem | kVm));  // from ioctl_scopes.rules
  std::string h = rendered("kvm/abi/ioctls.h");
  CHECK(contains(h,
                 "struct FxMissing : IoctlDefaults {\n"
                 "  static constexpr char name[] = \"KVM_FX_MISSING\";\n"
                 "  static constexpr bool available = false;"));
  CHECK(contains(h, "static constexpr OptionalCap capability = OptionalCap{true, Cap::Hlt};"));
  // What IoctlDefaults says is said there once and not repeated by the descriptors.
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = h.find(what); at != std::string::npos; at = h.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count("capability = kNoCap;") == 1);
  CHECK(count("available = true;") == 1);
  CHECK(count("deprecated = false;") == 1);
}

TEST_CASE("the rendered fixture bindings compile, layout asserts included") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  fs::path dir = fs::path(tmp) / "fixture_out";
  for (const auto& [rel, text] : render_all(fixture_model(), "templates")) {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << text;
  }
  fs::path main = dir / "use.cc";
  std::ofstream(main) << "#include \"kvm/abi/ioctl_table.h\"\n"
                         "#include \"kvm/abi/kvm_abi.h\"\n"
                         "#include \"kvm/abi/layout.h\"\n"
                         "#include \"kvm/abi/names.h\"\n"
                         "static_assert(kvm::abi::to_string(kvm::abi::Cap::FixtureNew) == "
                         "\"KVM_CAP_FIXTURE_NEW\");\n"
                         "int main() {}\n";
  testing::CommandResult r = testing::run_command(
      "g++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I" + dir.string() + " " + main.string());
  INFO(r.output);
  CHECK(r.status == 0);
}

TEST_CASE("a construct kvmgen does not model stops generation with an error naming it") {
  auto build = [](const std::string& fixture) {
    ParseOptions o;
    o.arch = "x86_64";
    o.include_dirs = {"tests/generator/fixtures/" + fixture, kFixture};
    return build_model(o, load_rules({"generator", kFixtureRules}));
  };
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(build("unknown_ioctl"),
                    Contains("unknown_ioctl/linux/kvm.h:15: KVM_FX_RAW looks like an ioctl") &&
                        Contains("(it uses _IOC)"));
  CHECK_THROWS_WITH(build("unknown_type"),
                    Contains("unknown_type/linux/kvm.h:13: field notify: type") &&
                        Contains("is a kind of C construct kvmgen does not model yet (type kind "
                                 "FunctionProto)"));
}

// Line numbers come from clang, which ends a line at "\n", "\r\n" or a lone "\r"; kvmgen's own
// reading of the header (sections, "Available with" comments) must count lines the same way.
// A fuzzer-found header with stray "\r"s once sent it past the end of its line table.
TEST_CASE("CRLF and lone-CR line endings give the same ioctls, scopes and gating caps") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  std::string lf = read_file(kFixture + "/linux/kvm.h");
  REQUIRE(lf.find('\r') == std::string::npos);

  for (const std::string eol : {"\r\n", "\r"}) {
    std::string text;
    for (char c : lf) text += c == '\n' ? eol : std::string(1, c);
    fs::path dir = fs::path(tmp) / (eol == "\r" ? "cr" : "crlf");
    fs::create_directories(dir / "linux");
    std::ofstream(dir / "linux/kvm.h", std::ios::binary) << text;
    ParseOptions o;
    o.arch = "x86_64";
    o.include_dirs = {dir.string(), kFixture};  // the rest of the tree from the fixture
    Model m = build_model(o, load_rules({"generator", kFixtureRules}));

    const auto& want = fixture_model().ioctls;
    REQUIRE(m.ioctls.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      INFO((eol == "\r" ? "CR: " : "CRLF: ") + want[i].name);
      CHECK(m.ioctls[i].name == want[i].name);
      CHECK(m.ioctls[i].line == want[i].line);
      CHECK(m.ioctls[i].scopes == want[i].scopes);
      CHECK(m.ioctls[i].gating_cap == want[i].gating_cap);
    }
  }
}

// ioctl_caps.rules (after api.rst) fills in the capability where the header has no comment and
// overrides the comment's block where it names the wrong one; "none" removes a capability.
TEST_CASE("the caps table fills in and overrides gating capabilities; bad lines are errors") {
  fs::path rules = copy_of_rules("caps_rules");
  auto build = [&](const std::string& extra) {
    std::ofstream(rules / "ioctl_caps.rules", std::ios::app) << extra;
    ParseOptions o;
    o.arch = "x86_64";
    o.include_dirs = {kFixture};
    return build_model(o, load_rules({rules.string(), kFixtureRules}));
  };
  auto find = [](const Model& m, const std::string& name) {
    auto it = std::find_if(m.ioctls.begin(), m.ioctls.end(),
                           [&](const Ioctl& i) { return i.name == name; });
    REQUIRE(it != m.ioctls.end());
    return *it;
  };
  CHECK(ioctl("KVM_FX_GET_FLEX").cap_source == "header comment");

  Model m = build(
      "KVM_FX_UNGATED   KVM_CAP_IRQCHIP  # fills in\n"
      "KVM_FX_GET_U64   none             # the comment's block does not reach it\n"
      "KVM_FX_GET_FLEX  KVM_CAP_FIXTURE_NEW\n"
      "KVM_FX_SET_ANON  KVM_CAP_NOT_IN_HEADER\n");
  CHECK(find(m, "KVM_FX_UNGATED").gating_cap == "KVM_CAP_IRQCHIP");
  CHECK(find(m, "KVM_FX_UNGATED").cap_source == "caps table");
  CHECK(find(m, "KVM_FX_GET_U64").gating_cap.empty());
  CHECK(find(m, "KVM_FX_GET_U64").cap_source.empty());
  CHECK(find(m, "KVM_FX_GET_FLEX").gating_cap == "KVM_CAP_FIXTURE_NEW");
  CHECK(find(m, "KVM_FX_SET_ANON").gating_cap.empty());  // an undefined cap is dropped, noted
  CHECK(std::count(m.notes.begin(), m.notes.end(),
                   "KVM_FX_SET_ANON: its caps table names KVM_CAP_NOT_IN_HEADER, which the header "
                   "does not define; no capability recorded") == 1);

  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(build("KVM_FX_GET_U64 KVM_CAP_HLT\n"),
                    Contains("ioctl_caps.rules:") && Contains("KVM_FX_GET_U64 is listed twice"));
  fs::copy_file("generator/ioctl_caps.rules", rules / "ioctl_caps.rules",
                fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(build("KVM_FX_UNGATED HLT\n"),
                    Contains("expected '<IOCTL> <KVM_CAP_NAME or none>'"));
}

TEST_CASE("a name rule takes one constant out of the family its prefix would give it") {
  fs::path rules = copy_of_rules("name_rules");
  std::ofstream(rules / "families.rules", std::ios::app)
      << "-  plain  name  KVM_MEM_READONLY\nExitIo  enum  name  KVM_EXIT_IO\n";
  ParseOptions o;
  o.arch = "x86_64";
  o.include_dirs = {kFixture};
  Model m = build_model(o, load_rules({rules.string(), kFixtureRules}));
  auto constant = [&](const std::string& name) {
    auto it = std::find_if(m.constants.begin(), m.constants.end(),
                           [&](const Constant& c) { return c.name == name; });
    REQUIRE(it != m.constants.end());
    return *it;
  };
  CHECK(constant("KVM_MEM_READONLY").family.empty());
  CHECK(constant("KVM_MEM_READONLY").cpp_name == "MemReadonly");
  CHECK(constant("KVM_MEM_LOG_DIRTY_PAGES").family == "MemoryFlags");
  CHECK(constant("KVM_EXIT_IO").family == "ExitIo");
  CHECK(constant("KVM_EXIT_IO").cpp_name == "ExitIo");
  CHECK(constant("KVM_EXIT_UNKNOWN").family == "ExitReason");
  CHECK(constant("KVM_EXIT_IO_IN").family == "IoDirection");  // a longer name is not matched
}

TEST_CASE("a malformed line in any rules file is an error naming the file, line and problem") {
  using Catch::Matchers::Contains;
  struct Bad {
    const char* file;
    const char* line;
    const char* message;
  };
  for (const Bad& bad : {
           Bad{"families.rules", "Foo enumm prefix KVM_FOO_", "unknown kind 'enumm'"},
           Bad{"families.rules", "Foo enum infix KVM_FOO_", "unknown match 'infix'"},
           Bad{"families.rules", "Foo enum prefix", "expected '<Family> <enum|flags|plain>"},
           Bad{"ioctl_scopes.rules", "KVM_FX_BAD vcpu extra  # why",
               "expected '<IOCTL> <scopes> [header-differs]'"},
           Bad{"ioctl_scopes.rules", "KVM_FX_BAD vcpux", "unknown scope 'vcpux'"},
           Bad{"ioctl_scopes.rules", "KVM_RUN vcpu", "KVM_RUN has two lines"},
           Bad{"ioctl_caps.rules", "KVM_RUN", "expected '<IOCTL> <KVM_CAP_NAME or none>'"},
       }) {
    INFO(bad.file << ": " << bad.line);
    fs::path dir = copy_of_rules("bad_rules");
    std::string text = read_file(dir / bad.file);
    const auto line = std::count(text.begin(), text.end(), '\n') + 1;
    std::ofstream(dir / bad.file, std::ios::app) << bad.line << "\n";
    CHECK_THROWS_WITH(load_rules(dir.string()),
                      Contains(std::string(bad.file) + ":" + std::to_string(line) + ": ") &&
                          Contains(bad.message));
  }
}

TEST_CASE("a capability that depends on the kind of fd: scope pairs in the caps table") {
  // The real table: KVM_CHECK_EXTENSION is basic on /dev/kvm and needs
  // KVM_CAP_CHECK_EXTENSION_VM on VM fds, which the fixture header does not define.
  const Ioctl& check = ioctl("KVM_CHECK_EXTENSION");
  REQUIRE(check.scope_caps.size() == 2);
  CHECK(check.scope_caps[0] == std::pair<unsigned, std::string>{kSystem, ""});
  CHECK(check.scope_caps[1] == std::pair<unsigned, std::string>{kVm, ""});
  CHECK(std::count(fixture_model().notes.begin(), fixture_model().notes.end(),
                   "KVM_CHECK_EXTENSION: the caps table names KVM_CAP_CHECK_EXTENSION_VM, which "
                   "the header does not define; none recorded for that fd") == 1);

  // A table of our own: the pairs reach the model and the rendered descriptor.
  fs::path rules = copy_of_rules("scope_caps");
  {
    std::ifstream in(rules / "ioctl_caps.rules");
    std::string text, line;
    while (std::getline(in, line))
      if (line.rfind("KVM_CHECK_EXTENSION ", 0) != 0) text += line + "\n";
    std::ofstream(rules / "ioctl_caps.rules")
        << text << "KVM_CHECK_EXTENSION  vm:KVM_CAP_IRQCHIP system:none\n";
  }
  ParseOptions o;
  o.arch = "x86_64";
  o.include_dirs = {kFixture};
  Model m = build_model(o, load_rules({rules.string(), kFixtureRules}));
  auto it = std::find_if(m.ioctls.begin(), m.ioctls.end(),
                         [](const Ioctl& i) { return i.name == "KVM_CHECK_EXTENSION"; });
  REQUIRE(it != m.ioctls.end());
  CHECK(it->gating_cap == "KVM_CAP_IRQCHIP");  // the first pair's
  CHECK(it->scope_caps ==
        std::vector<std::pair<unsigned, std::string>>{{kVm, "KVM_CAP_IRQCHIP"}, {kSystem, ""}});
  std::string h = render_all(m, "templates").at("kvm/abi/ioctls.h");
  CHECK(contains(h,
                 "    if (s == Scope::Vm) return OptionalCap{true, Cap::Irqchip};\n"
                 "    if (s == Scope::System) return kNoCap;\n"
                 "    return kNoCap;\n"));
  CHECK(contains(render_all(m, "templates").at("kvm_api.json"),
                 "\"capability_by_scope\":{\"vm\":\"KVM_CAP_IRQCHIP\",\"system\":null}"));

  // A pair for an fd the ioctl does not work on, and malformed pairs.
  using Catch::Matchers::Contains;
  std::ofstream(rules / "ioctl_caps.rules", std::ios::app) << "KVM_FX_SET_ANON vcpu:KVM_CAP_HLT\n";
  CHECK_THROWS_WITH(build_model(o, load_rules({rules.string(), kFixtureRules})),
                    Contains("ioctl_caps.rules gives KVM_FX_SET_ANON a capability on a kind of "
                             "fd it does not work on"));
  for (const char* bad :
       {"KVM_FX_UNGATED vm:KVM_CAP_HLT vm:KVM_CAP_IRQCHIP", "KVM_FX_UNGATED system,vm:KVM_CAP_HLT",
        "KVM_FX_UNGATED vm:HLT", "KVM_FX_UNGATED vm:KVM_CAP_HLT KVM_CAP_IRQCHIP"}) {
    INFO(bad);
    fs::path dir = copy_of_rules("bad_scope_caps");
    std::ofstream(dir / "ioctl_caps.rules", std::ios::app) << bad << "\n";
    CHECK_THROWS_WITH(load_rules(dir.string()),
                      Contains("ioctl_caps.rules:") &&
                          (Contains("scope given twice") || Contains("one scope per pair") ||
                           Contains("expected '<IOCTL> <KVM_CAP_NAME or none>'")));
  }
}

namespace {

// The basic fixture with `extra` inserted before its closing #endif, as a tree of its own.
ParseOptions fixture_with(const std::string& name, const std::string& extra) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  std::string text = read_file(kFixture + "/linux/kvm.h");
  auto end = text.rfind("#endif");
  REQUIRE(end != std::string::npos);
  text.insert(end, extra + "\n");
  fs::path dir = fs::path(tmp) / name;
  fs::create_directories(dir / "linux");
  std::ofstream(dir / "linux/kvm.h", std::ios::binary) << text;
  ParseOptions o;
  o.arch = "x86_64";
  o.include_dirs = {dir.string(), kFixture};
  return o;
}

}  // namespace

TEST_CASE("an ioctl without a line in ioctl_scopes.rules stops generation") {
  using Catch::Matchers::Contains;
  ParseOptions o = fixture_with("unscoped", "#define KVM_FX_NO_SCOPE _IO(KVMIO, 0x91)");
  CHECK_THROWS_WITH(build_model(o, load_rules({"generator", kFixtureRules})),
                    Contains("ioctl KVM_FX_NO_SCOPE has no known scope") &&
                        Contains("generator/ioctl_scopes.rules"));
  // An overlay directory gives it one, without touching the project's table.
  fs::path overlay = fs::path(std::getenv("TEST_TMPDIR")) / "overlay";
  fs::create_directories(overlay);
  std::ofstream(overlay / "ioctl_scopes.rules") << "KVM_FX_NO_SCOPE vcpu  # mine\n";
  Model m = build_model(o, load_rules({"generator", kFixtureRules, overlay.string()}));
  auto io = std::find_if(m.ioctls.begin(), m.ioctls.end(),
                         [](const Ioctl& i) { return i.name == "KVM_FX_NO_SCOPE"; });
  REQUIRE(io != m.ioctls.end());
  CHECK(io->scopes == kVcpu);
  CHECK(io->scope_source == "ioctl_scopes.rules: mine (the header section agrees)");
}

TEST_CASE("a header section that contradicts the table is an error unless marked") {
  using Catch::Matchers::Contains;
  // KVM_FX_GET_U64 sits among the fixture's vcpu ioctls; a table that says vm is caught.
  fs::path overlay = fs::path(std::getenv("TEST_TMPDIR")) / "contradicts";
  fs::create_directories(overlay);
  std::ofstream(overlay / "ioctl_scopes.rules") << "KVM_FX_GET_U64 vm\n";
  ParseOptions o;
  o.arch = "x86_64";
  o.include_dirs = {kFixture};
  CHECK_THROWS_WITH(build_model(o, load_rules({"generator", kFixtureRules, overlay.string()})),
                    Contains("ioctl KVM_FX_GET_U64 sits among the header's vcpu ioctls, but "
                             "ioctl_scopes.rules gives it vm"));
  std::ofstream(overlay / "ioctl_scopes.rules") << "KVM_FX_GET_U64 vm header-differs\n";
  Model m = build_model(o, load_rules({"generator", kFixtureRules, overlay.string()}));
  CHECK(std::any_of(m.ioctls.begin(), m.ioctls.end(), [](const Ioctl& i) {
    return i.name == "KVM_FX_GET_U64" && i.scopes == kVm &&
           i.scope_source.find("files it among vcpu ioctls, wrongly") != std::string::npos;
  }));
}

TEST_CASE("a section ends at the next struct: ioctls below it have only the table's scope") {
  // As in the newest linux/kvm.h, which lost its "ioctls for VM fds" comment: a VM ioctl after a
  // struct that follows the /dev/kvm section is not taken for a system ioctl.
  ParseOptions o =
      fixture_with("after_struct",
                   "/*\n * ioctls for /dev/kvm fds:\n */\n#define KVM_FX_SYS _IO(KVMIO, 0x92)\n"
                   "struct kvm_fx_between { __u32 x; };\n#define KVM_FX_VM_LATER _IO(KVMIO, 0x93)");
  fs::path overlay = fs::path(std::getenv("TEST_TMPDIR")) / "after_struct_rules";
  fs::create_directories(overlay);
  std::ofstream(overlay / "ioctl_scopes.rules") << "KVM_FX_SYS system\nKVM_FX_VM_LATER vm\n";
  Model m = build_model(o, load_rules({"generator", kFixtureRules, overlay.string()}));
  for (const Ioctl& io : m.ioctls) {
    if (io.name == "KVM_FX_SYS") CHECK(io.scope_source.find("section agrees") != std::string::npos);
    if (io.name == "KVM_FX_VM_LATER") {
      CHECK(io.scopes == kVm);
      CHECK(io.scope_source == "ioctl_scopes.rules");
    }
  }
}

TEST_CASE("an enum family refuses a second member of one value and a member named as a flag") {
  using Catch::Matchers::Contains;
  const auto rules = load_rules({"generator", kFixtureRules});
  // KVM_EXIT_HYPERCALL_LONG_MODE-like: a flag that the ExitReason prefix would sweep in.
  CHECK_THROWS_WITH(build_model(fixture_with("collide", "#define KVM_EXIT_FX_COLLIDES 2"), rules),
                    Contains("KVM_EXIT_FX_COLLIDES has the value 2 of KVM_EXIT_IO in the enum "
                             "ExitReason"));
  CHECK_THROWS_WITH(
      build_model(fixture_with("flagname", "#define KVM_EXIT_FX_FLAG_VALID 1234"), rules),
      Contains("KVM_EXIT_FX_FLAG_VALID is a flag, but families.rules puts it in the enum "
               "ExitReason"));
  // The header's own alias is not a collision.
  Model m = build_model(fixture_with("alias", "#define KVM_EXIT_FX_ALIAS KVM_EXIT_IO"), rules);
  CHECK(std::any_of(m.constants.begin(), m.constants.end(), [](const Constant& c) {
    return c.name == "KVM_EXIT_FX_ALIAS" && c.family == "ExitReason" && c.alias_of == "KVM_EXIT_IO";
  }));
}

TEST_CASE("flexible arrays inside a named union keep the C access path (kvm_nested_state)") {
  ParseOptions o = fixture_with(
      "flex_union",
      "struct kvm_fx_vmx { __u8 blob[16]; };\nstruct kvm_fx_svm { __u8 blob[8]; };\n"
      "struct kvm_fx_nested {\n  __u32 size;\n  __u32 pad;\n  union {\n"
      // __DECLARE_FLEX_ARRAY(struct kvm_fx_vmx, vmx) and the same for svm, expanded
      "    struct { struct { } __empty_vmx; struct kvm_fx_vmx vmx[]; };\n"
      "    struct { struct { } __empty_svm; struct kvm_fx_svm svm[]; };\n  } data;\n};");
  Model m = build_model(o, load_rules({"generator", kFixtureRules}));
  auto rec = std::find_if(m.records.begin(), m.records.end(),
                          [](const auto& r) { return r->name == "kvm_fx_nested"; });
  REQUIRE(rec != m.records.end());
  const Field& data = (*rec)->fields.back();
  CHECK(data.name == "data");
  CHECK_FALSE(data.omitted);
  REQUIRE(data.nested);
  std::vector<std::string> kept;
  for (const Field& f : data.nested->fields) {
    if (!f.omitted) kept.push_back(f.name + (f.flexible ? "[]" : ""));
  }
  CHECK(kept == std::vector<std::string>{"vmx[]", "svm[]"});
}

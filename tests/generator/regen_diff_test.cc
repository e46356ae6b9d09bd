// Regenerating for a newer header tree, as a user would after a kernel update: fixtures/newer is
// fixtures/basic plus two caps, an exit reason, an ioctl with a struct of its own and a reshaped
// union. The new members flow through with no change to the generator; `kvmgen diff` reports
// exactly them (asserted against golden/); the regenerated output is fresh and passes both
// cross-checks. Also: the errors kvmgen gives for bad input.
//
// After an intended change to the diff format, refresh golden/ with update_golden.sh.
#include <catch2/catch.hpp>

#include "tests/generator/kvmgen_arches.h"
#include "tests/run_command.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

using Result = testing::CommandResult;

Result run(const std::string& cmd) { return testing::run_command(cmd); }

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const fs::path kKvmgen = fs::absolute("generator/kvmgen");
const fs::path kBasic = fs::absolute("tests/generator/fixtures/basic");
const fs::path kNewer = fs::absolute("tests/generator/fixtures/newer");
const fs::path kGolden = fs::absolute("tests/generator/golden");
const std::string kArgs = " --rules " + fs::absolute("generator").string() + " --rules " +
                          fs::absolute("tests/generator/fixtures/rules").string() +
                          " --templates " + fs::absolute("templates").string();

// T/old from fixtures/basic and T/new from fixtures/newer (x86_64), generated once.
const fs::path& work() {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    REQUIRE(tmp != nullptr);
    fs::path d = fs::path(tmp) / "regen";
    fs::remove_all(d);
    for (const auto& [tree, out] : {std::pair{kBasic, "old"}, std::pair{kNewer, "new"}}) {
      Result r = run(kKvmgen.string() + " generate --quiet --arch x86_64 --include-dir " +
                     tree.string() + kArgs + " --out " + (d / out).string());
      INFO(r.output);
      REQUIRE(r.status == 0);
    }
    return d;
  }();
  return dir;
}

Result kvmgen_diff(const std::string& options, const std::string& from, const std::string& to) {
  return run("cd " + work().string() + " && " + kKvmgen.string() + " diff " + options + from + " " +
             to);
}

}  // namespace

TEST_CASE("regenerating in place from a newer tree picks up every new item and shows the diff") {
  fs::path dir = work() / "in_place";
  fs::remove_all(dir);
  fs::copy(work() / "old", dir, fs::copy_options::recursive);
  Result r = run(kKvmgen.string() + " generate --arch x86_64 --include-dir " + kNewer.string() +
                 kArgs + " --out " + dir.string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  // Before overwriting, generate reports the API changes against the model it replaces.
  CHECK(contains(r.output, "20 change(s), 9 breaking"));
  CHECK(contains(r.output, "  + KVM_FX_SET_NEW added:"));

  const fs::path out = dir / "x86_64";
  std::string constants = read(out / "kvm/abi/constants.h");
  CHECK(contains(constants, "  FixtureNewer = 301,  // KVM_CAP_FIXTURE_NEWER"));
  CHECK(contains(constants, "  FixtureNewest = 302,  // KVM_CAP_FIXTURE_NEWEST"));
  CHECK(contains(constants, "  FixtureNew = 40,  // KVM_EXIT_FIXTURE_NEW"));
  CHECK(contains(constants, "inline constexpr std::int64_t FxWidgetOn = 1;  // KVM_FX_WIDGET_ON"));
  CHECK(contains(r.output, "hint: 2 new constants share the prefix KVM_FX_WIDGET_"));
  std::string ioctls = read(out / "kvm/abi/ioctls.h");
  CHECK(contains(ioctls, "struct FxSetNew : IoctlDefaults {"));
  CHECK(contains(ioctls, "  using arg_type = kvm_fx_new;  // struct kvm_fx_new"));
  CHECK(contains(ioctls, "  static constexpr std::uint64_t request = 0x4010ae82;"));
  CHECK(contains(read(out / "kvm/abi/ioctl_table.h"), "{\"KVM_FX_SET_NEW\", 0x4010ae82,"));
  CHECK(contains(read(out / "kvm/abi/structs.h"), "struct kvm_fx_new {"));
  std::string layout = read(out / "kvm/abi/layout.h");
  CHECK(contains(layout, "static_assert(sizeof(kvm_fx_new) == 16"));
  CHECK(contains(layout, "static_assert(offsetof(kvm_fx_run, io.count) == 12"));
  CHECK(contains(layout, "static_assert(offsetof(kvm_fx_run, mmio.data) == 16"));
  CHECK(read(out / "kvm_api.json") == read(work() / "new/x86_64/kvm_api.json"));
}

TEST_CASE("kvmgen diff reports exactly the fixture's changes, as text") {
  Result r = kvmgen_diff("", "old/x86_64", "new/x86_64");
  CHECK(r.status == 1);  // as diff(1): 1 when the models differ
  CHECK(r.output == read(kGolden / "basic_to_newer.txt"));
  // A family no rule knows is reported as plain constants, with advice.
  CHECK(contains(r.output, "  + KVM_FX_WIDGET_ON added: consts::FxWidgetOn = 1\n"));
  CHECK(contains(r.output,
                 "hint: 2 new constants share the prefix KVM_FX_WIDGET_ and no family "
                 "(KVM_FX_WIDGET_ON, KVM_FX_WIDGET_OFF): if they are one family"));
}

TEST_CASE("kvmgen diff reports exactly the fixture's changes, as JSON") {
  Result r = kvmgen_diff("--json ", "old/x86_64", "new/x86_64");
  CHECK(r.status == 1);
  CHECK(r.output == read(kGolden / "basic_to_newer.json"));
}

TEST_CASE("kvmgen diff: identical models, and the reverse direction is all breaking removals") {
  Result same = kvmgen_diff("", "new/x86_64/kvm_api.json", "new/x86_64");
  CHECK(same.status == 0);
  CHECK(contains(same.output, "0 change(s), 0 breaking"));
  Result back = kvmgen_diff("", "new/x86_64", "old/x86_64");
  INFO(back.output);
  CHECK(back.status == 1);
  CHECK(contains(back.output, "20 change(s), 20 breaking"));
  CHECK_FALSE(contains(back.output, "hint:"));  // removals suggest no rule
  CHECK(contains(back.output, "  - KVM_CAP_FIXTURE_NEWER removed: was 301  [breaking]"));
  CHECK(contains(back.output, "  - kvm_fx_new removed: was struct, 16 bytes  [breaking]"));
}

TEST_CASE("the output regenerated from the newer tree is fresh and passes both cross-checks") {
  const fs::path out = work() / "new/x86_64";
  Result fresh = run(kKvmgen.string() + " check --quiet --arch x86_64 --include-dir " +
                     kNewer.string() + kArgs + " --out " + (work() / "new").string());
  INFO(fresh.output);
  CHECK(fresh.status == 0);
  // ... while the old output is stale for the newer tree.
  Result stale = run(kKvmgen.string() + " check --quiet --arch x86_64 --include-dir " +
                     kNewer.string() + kArgs + " --out " + (work() / "old").string());
  CHECK(stale.status == 1);
  CHECK(contains(stale.output, "stale: " + (work() / "old/x86_64/kvm/abi/constants.h").string()));

  // Compile-time cross-check, as //:crosscheck_<arch>_static_test runs it.
  Result c = run("clang-14 --target=x86_64-linux-gnu -fsyntax-only -Wall -Werror -I " +
                 kNewer.string() + " " + (out / "tests/crosscheck_static.c").string());
  INFO(c.output);
  CHECK(c.status == 0);
  Result cc =
      run("clang++-14 --target=x86_64-linux-gnu -std=c++20 -fsyntax-only -Wall -Wextra "
          "-Werror -I " +
          out.string() + " " + (out / "tests/crosscheck_static.cc").string());
  INFO(cc.output);
  CHECK(cc.status == 0);

  // The run-time cross-check (bitfield images included), as //:crosscheck_x86_64_test runs it.
  fs::path build = work() / "crosscheck_build";
  fs::create_directories(build);
  std::ofstream(build / "main.cc") << "#define CATCH_CONFIG_MAIN\n#include <catch2/catch.hpp>\n";
  std::string tests = (out / "tests").string();
  Result b = run("cd " + build.string() + " && gcc -w -c -I " + kNewer.string() + " -I " + tests +
                 " " + tests + "/crosscheck_expected.c -o expected.o && g++ -w -std=c++20 -I " +
                 out.string() + " -I " + tests + " main.cc " + tests +
                 "/crosscheck_test.cc expected.o -o crosscheck && ./crosscheck");
  INFO(b.output);
  CHECK(b.status == 0);
  CHECK(contains(b.output, "All tests passed"));
}

TEST_CASE("bad input gets an error naming what was wrong") {
  // A tree whose asm/ belongs to another arch is refused, not parsed into wrong bindings.
  Result arch = run(kKvmgen.string() + " generate --quiet --arch aarch64 --include-dir " +
                    kBasic.string() + kArgs + " --out " + (work() / "wrong").string());
  CHECK(arch.status == 2);
  CHECK(contains(arch.output, "asm/kvm.h is not the aarch64 asm/kvm.h (it lacks struct kvm_regs"));
  CHECK(contains(arch.output, "--include-dir aarch64=DIR"));
  CHECK_FALSE(fs::exists(work() / "wrong/aarch64"));

  Result unknown = run(kKvmgen.string() + " generate --include-dir mips=" + kBasic.string());
  CHECK(unknown.status == 2);
  CHECK(contains(unknown.output,
                 "unknown arch 'mips' (known: x86_64, aarch64, riscv64, s390x, powerpc64le, "
                 "loongarch64)"));

  Result missing = run(kKvmgen.string() + " generate --include-dir /no/such/tree");
  CHECK(missing.status == 2);
  CHECK(contains(missing.output, "no such directory /no/such/tree"));

  Result not_arch =
      run(kKvmgen.string() + " generate --arch x86_64 --include-dir riscv64=" + kBasic.string());
  CHECK(not_arch.status == 2);
  CHECK(contains(not_arch.output, "names an arch that --arch does not select"));

  Result no_model = kvmgen_diff("", "old", "new/x86_64");
  CHECK(no_model.status == 2);
  CHECK(contains(no_model.output, "cannot read old/kvm_api.json"));

  std::ofstream(work() / "broken.json") << "{\"generated_by\": \"kvmgen\", \"arch\": ";
  Result broken = kvmgen_diff("", "broken.json", "new/x86_64");
  CHECK(broken.status == 2);
  CHECK(contains(broken.output, "broken.json: not valid JSON"));

  std::ofstream(work() / "other.json") << "{\"name\": \"something else\"}";
  Result other = kvmgen_diff("", "new/x86_64", "other.json");
  CHECK(other.status == 2);
  CHECK(contains(other.output, "other.json: not a kvm_api.json written by kvmgen"));

  Result usage = kvmgen_diff("", "new/x86_64", "");
  CHECK(usage.status == 2);
  CHECK(contains(usage.output, "diff takes two models: OLD NEW"));
}

TEST_CASE("every checked-in model diffed against itself shows no change") {
  // Unnamed bitfields (s390's `__u64 : 58;` padding) once shared one path in the diff, which
  // then reported a model as changed against itself.
  for (const std::string& arch : testing::kvmgen_arch_names(kKvmgen.string())) {
    INFO(arch);
    std::string dir = fs::absolute(fs::path("generated") / arch).string();
    Result r = run(kKvmgen.string() + " diff " + dir + " " + dir);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(contains(r.output, "0 change(s), 0 breaking"));
  }
}

// generated/ must be exactly what kvmgen produces from the installed headers today, for every
// arch (x86_64 from linux-libc-dev, aarch64 and riscv64 from Debian's cross headers): the test
// regenerates in memory and diffs (kvmgen check). Other cases prove the check notices a hand
// edit in any arch, and a missing arch.
#include <catch2/catch.hpp>

#include "tests/run_command.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using Result = testing::CommandResult;

Result run(const std::string& cmd) { return testing::run_command(cmd); }

const std::string kKvmgen = "generator/kvmgen";
const std::string kArgs = " --rules generator --templates templates";
const std::vector<std::string> kArches = {"x86_64", "aarch64", "riscv64"};

}  // namespace

TEST_CASE("generated/ is fresh: regenerating from the installed headers changes nothing") {
  for (const std::string& arch : kArches) {
    INFO(arch);
    CHECK(fs::exists("generated/" + arch + "/kvm/abi/kvm_abi.h"));
    CHECK(fs::exists("generated/" + arch + "/kvm_api.json"));
  }
  // Without --arch, kvmgen checks every arch it knows.
  Result r = run(kKvmgen + " check --quiet" + kArgs + " --out generated");
  INFO(r.output);
  CHECK(r.status == 0);
}

TEST_CASE("the freshness check covers every arch: a hand edit or a missing arch is caught") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  fs::path copy = fs::path(tmp) / "generated_all";
  fs::remove_all(copy);
  fs::copy("generated", copy, fs::copy_options::recursive);
  for (const std::string& arch : kArches) {
    fs::path edited = copy / arch / "kvm/abi/structs.h";
    fs::permissions(edited, fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(edited, std::ios::app) << "// a hand edit\n";
  }
  Result r = run(kKvmgen + " check --quiet" + kArgs + " --out " + copy.string());
  INFO(r.output);
  CHECK(r.status == 1);
  for (const std::string& arch : kArches) {
    CHECK(r.output.find("stale: " + (copy / arch / "kvm/abi/structs.h").string()) !=
          std::string::npos);
  }
  fs::remove_all(copy / "riscv64");
  r = run(kKvmgen + " check --quiet --arch riscv64" + kArgs + " --out " + copy.string());
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("missing: " + (copy / "riscv64/kvm/abi/kvm_abi.h").string()) !=
        std::string::npos);
}

TEST_CASE("the freshness check fails on a hand-edited generated file and shows the diff") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  fs::path copy = fs::path(tmp) / "generated";
  fs::remove_all(copy);
  fs::copy("generated", copy, fs::copy_options::recursive);
  fs::path edited = copy / "x86_64/kvm/abi/constants.h";
  fs::permissions(edited, fs::perms::owner_write, fs::perm_options::add);
  {
    std::ofstream o(edited, std::ios::app);
    o << "// a hand edit\n";
  }
  Result r = run(kKvmgen + " check --quiet" + kArgs + " --out " + copy.string());
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("stale: " + edited.string()) != std::string::npos);
  CHECK(r.output.find("-// a hand edit") != std::string::npos);

  // A file kvmgen would not produce is reported too.
  fs::remove(edited);
  { std::ofstream o(copy / "x86_64/stray.h"); }
  r = run(kKvmgen + " check --quiet" + kArgs + " --out " + copy.string());
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("missing: " + edited.string()) != std::string::npos);
  CHECK(r.output.find("not produced by kvmgen: " + (copy / "x86_64/stray.h").string()) !=
        std::string::npos);
}

TEST_CASE("regenerating twice gives byte-identical output") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  fs::path a = fs::path(tmp) / "gen_a", b = fs::path(tmp) / "gen_b";
  fs::remove_all(a);
  fs::remove_all(b);
  REQUIRE(run(kKvmgen + " generate --quiet" + kArgs + " --out " + a.string()).status == 0);
  REQUIRE(run(kKvmgen + " generate --quiet" + kArgs + " --out " + b.string()).status == 0);
  Result d = run("diff -r " + a.string() + " " + b.string());
  INFO(d.output);
  CHECK(d.status == 0);
}

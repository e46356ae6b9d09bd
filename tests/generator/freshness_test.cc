// generated/ must be exactly what kvmgen produces from its recorded input, for every arch: the
// `newest` row of generator/kernel_headers.versions (Debian's linux-libc-dev, fetched into
// .cache/kernel-headers by tools/kernel_headers.sh and seen here as @kernel_headers). The test
// regenerates in memory and diffs (kvmgen check). When Debian no longer has the recorded
// version, the fetch took the nearest of its series (kernel-headers/newest/NOTE says so): the
// output is then still compared and any difference printed, but it is not a failure, since a
// change in the kernel's headers is not one in kvmgen. Other cases prove the check notices a
// hand edit in any arch, and a missing arch. The arches are the ones `kvmgen arches` lists, and
// generated/ must hold those and no other.
#include <catch2/catch.hpp>

#include "tests/generator/kvmgen_arches.h"
#include "tests/run_command.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using Result = testing::CommandResult;

Result run(const std::string& cmd) { return testing::run_command(cmd); }

const std::string kKvmgen = "generator/kvmgen";
// Every arch kvmgen knows: generated/ must hold each, fresh.
const std::vector<std::string>& all_arches() {
  static const std::vector<std::string> arches = testing::kvmgen_arch_names(kKvmgen);
  return arches;
}
const fs::path kHeaders = "../kernel_headers/newest";  // @kernel_headers in the runfiles

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The Debian version generator/kernel_headers.versions records for the `newest` row.
std::string recorded_version() {
  std::ifstream in("generator/kernel_headers.versions");
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string series, suite, version;
    if (words >> series >> suite >> version && series == "newest") return version;
  }
  return "";
}

// kvmgen options that regenerate generated/ (or the arches given) from its recorded input.
std::string input_args(const std::vector<std::string>& arches = all_arches()) {
  std::string args = " --rules generator --templates templates --source '" +
                     std::string("Debian linux-libc-dev ") + recorded_version() + "'";
  for (const std::string& arch : arches) {
    args += " --include-dir " + arch + "=" + (kHeaders / arch / "include").string();
  }
  return args;
}

}  // namespace

TEST_CASE("generated/ holds a directory for exactly the arches kvmgen knows") {
  std::vector<std::string> dirs;
  for (const fs::directory_entry& e : fs::directory_iterator("generated")) {
    if (e.is_directory()) dirs.push_back(e.path().filename().string());
  }
  std::vector<std::string> known = all_arches();
  std::sort(dirs.begin(), dirs.end());
  std::sort(known.begin(), known.end());
  CHECK(dirs == known);
}

TEST_CASE("generated/ is fresh: regenerating from the recorded headers changes nothing") {
  REQUIRE(!recorded_version().empty());
  REQUIRE(fs::exists(kHeaders / "VERSION"));  // else: run tools/kernel_headers.sh
  for (const std::string& arch : all_arches()) {
    INFO(arch);
    CHECK(fs::exists("generated/" + arch + "/kvm/abi/kvm_abi.h"));
    CHECK(fs::exists("generated/" + arch + "/kvm_api.json"));
  }
  Result r = run(kKvmgen + " check --quiet" + input_args() + " --out generated");
  if (fs::exists(kHeaders / "NOTE")) {
    WARN("not the recorded input: " << read_text(kHeaders / "NOTE") << "\nkvmgen check says:\n"
                                    << r.output);
    CHECK(r.status != 2);  // it still parses and renders
    return;
  }
  INFO(r.output);
  CHECK(read_text(kHeaders / "VERSION") == recorded_version());
  CHECK(r.status == 0);
}

TEST_CASE("the freshness check covers every arch: a hand edit or a missing arch is caught") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  fs::path copy = fs::path(tmp) / "generated_all";
  fs::remove_all(copy);
  fs::copy("generated", copy, fs::copy_options::recursive);
  for (const std::string& arch : all_arches()) {
    fs::path edited = copy / arch / "kvm/abi/structs.h";
    fs::permissions(edited, fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(edited, std::ios::app) << "// a hand edit\n";
  }
  Result r = run(kKvmgen + " check --quiet" + input_args() + " --out " + copy.string());
  INFO(r.output);
  CHECK(r.status == 1);
  for (const std::string& arch : all_arches()) {
    CHECK(r.output.find("stale: " + (copy / arch / "kvm/abi/structs.h").string()) !=
          std::string::npos);
  }
  fs::remove_all(copy / "riscv64");
  r = run(kKvmgen + " check --quiet --arch riscv64" + input_args({"riscv64"}) + " --out " +
          copy.string());
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
  Result r = run(kKvmgen + " check --quiet" + input_args() + " --out " + copy.string());
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("stale: " + edited.string()) != std::string::npos);
  CHECK(r.output.find("-// a hand edit") != std::string::npos);

  // A file kvmgen would not produce is reported too.
  fs::remove(edited);
  { std::ofstream o(copy / "x86_64/stray.h"); }
  r = run(kKvmgen + " check --quiet" + input_args() + " --out " + copy.string());
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
  REQUIRE(run(kKvmgen + " generate --quiet" + input_args() + " --out " + a.string()).status == 0);
  REQUIRE(run(kKvmgen + " generate --quiet" + input_args() + " --out " + b.string()).status == 0);
  Result d = run("diff -r " + a.string() + " " + b.string());
  INFO(d.output);
  CHECK(d.status == 0);
}

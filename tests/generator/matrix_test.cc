// The version matrix: kvmgen on real kernel headers of three series (6.1, the installed bookworm
// headers; 6.12 and the newest, Debian's linux-libc-dev fetched by tools/kernel_headers.sh) for
// every arch. Each cell regenerates into a scratch directory, and then:
//   - both cross-checks compile for that arch's target against that cell's own C headers
//     (crosscheck_static.c asserts every value and layout of the model against <linux/kvm.h>,
//     crosscheck_static.cc asserts them on the C++ side, with kvm/abi/layout.h's asserts);
//   - the runtime (runtime/kvm/*.cc) compiles against the bindings, for the arches it supports.
// Across the cells of one arch, no ioctl changes its scopes and no constant changes its family:
// a header change must never move either silently.
//
// 6.1 has no LoongArch KVM (it came in 6.7), so that cell does not exist.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/generator/kvmgen_arches.h"
#include "tests/run_command.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Arch {
  std::string name, triple;
  bool runtime;  // runtime/kvm/ is written for it
};
// Every arch kvmgen knows (`kvmgen arches`); runtime/kvm/ is written for these three.
const std::vector<Arch>& all_arches() {
  static const std::vector<Arch> arches = [] {
    std::vector<Arch> out;
    for (const testing::KvmgenArch& a : testing::kvmgen_arches("generator/kvmgen")) {
      bool runtime = a.name == "x86_64" || a.name == "aarch64" || a.name == "riscv64";
      out.push_back({a.name, a.triple, runtime});
    }
    return out;
  }();
  return arches;
}
const std::vector<std::string> kSeries = {"6.1", "6.12", "newest"};
const fs::path kHeaders = "../kernel_headers";  // @kernel_headers in the runfiles
const fs::path kSysroot = "../loongarch64_sysroot";

testing::CommandResult run(const std::string& cmd) { return testing::run_command(cmd); }

fs::path scratch() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  REQUIRE(tmp != nullptr);
  return fs::path(tmp) / "matrix";
}

// The include tree of a cell; empty for 6.1, whose headers are kvmgen's Debian defaults.
std::string tree(const std::string& series, const Arch& arch) {
  if (series == "6.1") return "";
  return fs::absolute(kHeaders / series / arch.name / "include").string();
}

std::string clang_flags(const std::string& series, const Arch& arch, const fs::path& out) {
  std::string f = " --target=" + arch.triple + " -fsyntax-only -Wall -Wextra -Werror";
  if (arch.name == "loongarch64") f += " --sysroot=" + fs::absolute(kSysroot).string();
  if (!tree(series, arch).empty()) f += " -isystem " + tree(series, arch);
  return f + " -I " + (out / arch.name).string();
}

bool cell_exists(const std::string& series, const Arch& arch) {
  return !(series == "6.1" && arch.name == "loongarch64");
}

// Generates one cell, once per test run; returns its output directory.
fs::path generate(const std::string& series, const Arch& arch) {
  static std::set<std::string> done;
  fs::path out = scratch() / series;
  if (done.count(series + "/" + arch.name)) return out;
  std::string cmd =
      "generator/kvmgen generate --quiet --rules generator --templates templates "
      "--arch " +
      arch.name + " --out " + out.string();
  if (!tree(series, arch).empty()) cmd += " --include-dir " + arch.name + "=" + tree(series, arch);
  auto r = run(cmd);
  INFO(cmd << "\n" << r.output);
  REQUIRE(r.status == 0);
  done.insert(series + "/" + arch.name);
  return out;
}

json model_of(const std::string& series, const Arch& arch) {
  std::ifstream in(scratch() / series / arch.name / "kvm_api.json");
  return json::parse(in);
}

}  // namespace

TEST_CASE("every cell of the matrix generates, cross-checks and builds the runtime") {
  for (const std::string& series : kSeries) {
    for (const Arch& arch : all_arches()) {
      if (!cell_exists(series, arch)) continue;
      DYNAMIC_SECTION(series << " x " << arch.name) {
        fs::path out = generate(series, arch);
        fs::path tests = out / arch.name / "tests";
        std::string flags = clang_flags(series, arch, out);
        auto c = run("clang-16 -x c -std=gnu11" + flags + " " +
                     (tests / "crosscheck_static.c").string());
        INFO(c.output);
        CHECK(c.status == 0);
        auto cc = run("clang++-16 -x c++ -std=c++20" + flags + " " +
                      (tests / "crosscheck_static.cc").string());
        INFO(cc.output);
        CHECK(cc.status == 0);
        if (arch.runtime) {
          // One compiler run per source, two at a time (the machine has two cores).
          std::string cmd = "ls runtime/kvm/*.cc | xargs -P2 -n1 clang++-16 -x c++ -std=c++20" +
                            flags + " -I runtime";
          auto rt = run(cmd);
          INFO(cmd << "\n" << rt.output);
          CHECK(rt.status == 0);
        }
      }
    }
  }
}

TEST_CASE("across the matrix no ioctl changes scopes and no constant changes family") {
  for (const Arch& arch : all_arches()) {
    DYNAMIC_SECTION(arch.name) {
      std::map<std::string, std::pair<std::string, json>> scopes;  // ioctl -> (series, scopes)
      std::map<std::string, std::pair<std::string, std::string>> family;  // constant -> ...
      for (const std::string& series : kSeries) {
        if (!cell_exists(series, arch)) continue;
        generate(series, arch);
        json m = model_of(series, arch);
        for (const json& io : m["ioctls"]) {
          auto [it, fresh] = scopes.emplace(io["name"], std::make_pair(series, io["scopes"]));
          INFO(io["name"] << ": " << it->second.first << " " << it->second.second.dump() << ", "
                          << series << " " << io["scopes"].dump());
          CHECK((fresh || it->second.second == io["scopes"]));
        }
        for (const json& f : m["families"]) {
          for (const json& c : f["members"]) {
            std::string name = c["name"], fam = f["name"];
            auto [it, fresh] = family.emplace(name, std::make_pair(series, fam));
            INFO(name << ": " << it->second.first << " " << it->second.second << ", " << series
                      << " " << fam);
            CHECK((fresh || it->second.second == fam));
          }
        }
      }
      CHECK(scopes.size() > 100);
    }
  }
}

TEST_CASE("no rule-made enum family of any cell has two members with one value") {
  // kvmgen refuses such a family (unless the header defines an alias); this asserts the
  // output of every cell, so that a refusal loosened by mistake shows here.
  for (const std::string& series : kSeries) {
    for (const Arch& arch : all_arches()) {
      if (!cell_exists(series, arch)) continue;
      DYNAMIC_SECTION(series << " x " << arch.name) {
        generate(series, arch);
        json m = model_of(series, arch);
        for (const json& f : m["families"]) {
          if (f["kind"] != "enum") continue;
          std::map<std::string, std::string> by_value;
          for (const json& c : f["members"]) {
            auto [it, fresh] = by_value.emplace(c["value"].dump(), c["name"]);
            INFO(f["name"] << ": " << it->second << " and " << c["name"] << " are both "
                           << c["value"].dump());
            CHECK(fresh);
          }
        }
      }
    }
  }
}

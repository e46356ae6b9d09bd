// kvmgen: reads linux/kvm.h with libclang and writes the C++ bindings of generated/<arch>/.
//
//   kvmgen generate [--arch A]... [--include-dir D]... [--out DIR]   write generated/<arch>/
//   kvmgen check    [--arch A]... [--include-dir D]... [--out DIR]   exit 1 and show a diff if stale
//
// Without --arch, x86_64 is generated. --include-dir (repeatable) points at a uapi header tree
// such as /usr/include or a kernel's `make headers_install` output; without it each arch uses
// Debian's location for its headers. Paths default to the workspace (BUILD_WORKSPACE_DIRECTORY
// under `bazel run`, else the current directory): --rules generator/, --templates templates/,
// --out generated/.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "generator/parse.h"
#include "generator/render.h"

namespace fs = std::filesystem;
using namespace kvmgen;

namespace {

struct Args {
  std::string command;
  std::vector<std::string> arches;
  std::vector<std::string> include_dirs;
  std::string root, rules, templates, out;
  bool quiet = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "kvmgen: " << why << "\n"
            << "usage: kvmgen generate|check [--arch A]... [--include-dir D]... [--rules DIR]\n"
            << "              [--templates DIR] [--out DIR] [--quiet]\n";
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  if (argc < 2) usage("missing command");
  a.command = argv[1];
  if (a.command != "generate" && a.command != "check") usage("unknown command '" + a.command + "'");
  for (int i = 2; i < argc; ++i) {
    std::string opt = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(opt + " needs a value");
      return argv[++i];
    };
    if (opt == "--arch") a.arches.push_back(value());
    else if (opt == "--include-dir") a.include_dirs.push_back(value());
    else if (opt == "--rules") a.rules = value();
    else if (opt == "--templates") a.templates = value();
    else if (opt == "--out") a.out = value();
    else if (opt == "--quiet") a.quiet = true;
    else usage("unknown option '" + opt + "'");
  }
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  a.root = ws ? ws : ".";
  if (a.rules.empty()) a.rules = a.root + "/generator";
  if (a.templates.empty()) a.templates = a.root + "/templates";
  if (a.out.empty()) a.out = a.root + "/generated";
  if (a.arches.empty()) a.arches.push_back("x86_64");
  return a;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> existing_files(const fs::path& dir) {
  std::set<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.insert(e.path().lexically_relative(dir).string());
  }
  return out;
}

// Prints a unified diff of `expected` (fresh output) against the file on disk.
void show_diff(const fs::path& on_disk, const std::string& expected) {
  fs::path tmp = fs::temp_directory_path() / ("kvmgen-fresh-" + std::to_string(::getpid()));
  {
    std::ofstream o(tmp, std::ios::binary);
    o << expected;
  }
  std::string cmd = "diff -u --label '" + on_disk.string() + " (checked in)' --label '" +
                    on_disk.string() + " (regenerated)' '" + on_disk.string() + "' '" +
                    tmp.string() + "' | head -n 80";
  std::fflush(stdout);
  if (std::system(cmd.c_str()) != 0) std::cout << "(diff unavailable)\n";
  fs::remove(tmp);
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  try {
    Rules rules = load_rules(args.rules);
    int stale = 0;
    for (const std::string& arch : args.arches) {
      ParseOptions opts;
      opts.arch = arch;
      opts.include_dirs = args.include_dirs;
      Model model = build_model(opts, rules);
      Rendered files = render_all(model, args.templates);
      fs::path dir = fs::path(args.out) / arch;
      std::set<std::string> old = existing_files(dir);
      for (const auto& [rel, text] : files) {
        fs::path p = dir / rel;
        old.erase(rel);
        if (args.command == "generate") {
          fs::create_directories(p.parent_path());
          if (!fs::exists(p) || read(p) != text) {
            std::ofstream o(p, std::ios::binary);
            o << text;
            if (!o) throw std::runtime_error("cannot write " + p.string());
          }
        } else if (!fs::exists(p)) {
          std::cout << "missing: " << p.string() << "\n";
          ++stale;
        } else if (read(p) != text) {
          std::cout << "stale: " << p.string() << "\n";
          show_diff(p, text);
          ++stale;
        }
      }
      for (const std::string& rel : old) {
        if (args.command == "generate") {
          fs::remove(dir / rel);
        } else {
          std::cout << "not produced by kvmgen: " << (dir / rel).string() << "\n";
          ++stale;
        }
      }
      if (!args.quiet) {
        std::size_t usable = 0;
        for (const auto& io : model.ioctls) usable += io.available && !io.deprecated;
        std::cout << arch << ": Linux " << model.linux_version << ", " << model.families.size()
                  << " families, " << model.constants.size() << " constants, "
                  << model.ioctls.size() << " ioctls (" << usable << " usable), "
                  << model.records.size() << " records -> " << dir.string() << "\n";
        for (const auto& n : model.notes) std::cout << "  note: " << n << "\n";
      }
    }
    if (stale) {
      std::cout << stale << " generated file(s) differ from a fresh run; regenerate with "
                << "`bazel run //generator:regenerate`\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "kvmgen: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

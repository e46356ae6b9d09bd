// kvmgen: reads linux/kvm.h with libclang and writes the C++ bindings of generated/<arch>/.
//
//   kvmgen generate [--arch A]... [--include-dir [A=]D]... [--out DIR]   write generated/<arch>/
//   kvmgen check    [--arch A]... [--include-dir [A=]D]... [--out DIR]   exit 1 + diff if stale
//   kvmgen diff [--json] OLD NEW     API changes between two kvm_api.json (or generated/<arch>/)
//   kvmgen arches                    the known arches, "<arch> <target triple>" a line: the one
//                                    list that tests and scripts iterate over
//
// Without --arch every known arch is generated (x86_64, aarch64, riscv64, s390x, powerpc64le,
// loongarch64; the last has no Debian 12 headers package, so it needs an --include-dir), or, when
// some
// --include-dir is qualified with an arch (A=D), the arches so named. --include-dir (repeatable)
// points at a uapi header tree such as /usr/include or a kernel's `make headers_install` output;
// a plain D serves every arch, A=D only arch A (searched first). An arch with no directory uses
// Debian's location for its headers. Paths default to the workspace (BUILD_WORKSPACE_DIRECTORY
// under `bazel run`, else the current directory): --rules generator/, --templates templates/,
// --out generated/. A second --rules DIR overlays the first: its rules files add lines (see
// generator/rules.h). --source TEXT says where the header trees came from (the banner and
// kvm_api.json record it; `bazel run //generator:regenerate` passes the Debian package).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "generator/api_diff.h"
#include "generator/output.h"
#include "generator/parse.h"
#include "generator/render.h"

namespace fs = std::filesystem;
using namespace kvmgen;

namespace {

struct Args {
  std::string command;
  std::vector<std::string> arches;
  std::vector<std::string> include_dirs;                               // for every arch
  std::vector<std::pair<std::string, std::string>> arch_include_dirs;  // (arch, dir)
  std::string root, templates, out;
  std::vector<std::string> rules;  // the project's rules, then overlays (--rules, repeatable)
  std::string source;              // --source: where the headers came from, recorded in the output
  bool quiet = false;
  bool verbose = false;
  bool json = false;
  std::vector<std::string> positional;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr
      << "kvmgen: " << why << "\n"
      << "usage: kvmgen generate|check [--arch A]... [--include-dir [A=]DIR]...\n"
      << "              [--rules DIR] [--templates DIR] [--out DIR] [--source TEXT]\n"
      << "              [--quiet] [--verbose]\n"
      << "       kvmgen diff [--json] OLD NEW   (kvm_api.json files or generated/<arch> dirs)\n"
      << "       kvmgen arches\n";
  std::exit(2);
}

// Paths the user typed, made absolute: under `bazel run` the process runs elsewhere, and
// BUILD_WORKING_DIRECTORY is where the user was.
std::string user_path(const std::string& path) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || fs::path(path).is_absolute() || !cwd) return path;
  return (fs::path(cwd) / path).lexically_normal().string();
}

// "--include-dir aarch64=/tmp/arm64/include" or "--include-dir /usr/include".
void add_include_dir(Args& a, const std::string& value) {
  std::string dir = value;
  auto eq = value.find('=');
  if (eq != std::string::npos) {
    std::string arch = value.substr(0, eq);
    try {
      arch_info(arch);
    } catch (const std::runtime_error& e) {
      usage("--include-dir " + value + ": " + e.what());
    }
    dir = user_path(value.substr(eq + 1));
    a.arch_include_dirs.emplace_back(arch, dir);
  } else {
    dir = user_path(dir);
    a.include_dirs.push_back(dir);
  }
  if (!fs::is_directory(dir)) usage("--include-dir " + value + ": no such directory " + dir);
}

Args parse_args(int argc, char** argv) {
  Args a;
  if (argc < 2) usage("missing command");
  a.command = argv[1];
  if (a.command != "generate" && a.command != "check" && a.command != "diff" &&
      a.command != "arches") {
    usage("unknown command '" + a.command + "'");
  }
  if (a.command == "arches") {
    if (argc > 2) usage("arches takes no arguments");
    return a;
  }
  for (int i = 2; i < argc; ++i) {
    std::string opt = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(opt + " needs a value");
      return argv[++i];
    };
    if (a.command == "diff") {
      if (opt == "--json") {
        a.json = true;
      } else if (opt.size() > 1 && opt[0] == '-') {
        usage("unknown option '" + opt + "' for diff");
      } else {
        a.positional.push_back(user_path(opt));
      }
      continue;
    }
    if (opt == "--arch") {
      a.arches.push_back(value());
    } else if (opt == "--include-dir") {
      add_include_dir(a, value());
    } else if (opt == "--rules") {
      a.rules.push_back(user_path(value()));
    } else if (opt == "--templates") {
      a.templates = user_path(value());
    } else if (opt == "--out") {
      a.out = user_path(value());
    } else if (opt == "--source") {
      a.source = value();
    } else if (opt == "--quiet") {
      a.quiet = true;
    } else if (opt == "--verbose") {
      a.verbose = true;
    } else {
      usage("unknown option '" + opt + "'");
    }
  }
  if (a.command == "diff") {
    if (a.positional.size() != 2) usage("diff takes two models: OLD NEW");
    return a;
  }
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  a.root = ws ? ws : ".";
  if (a.rules.empty()) a.rules.push_back(a.root + "/generator");
  if (a.templates.empty()) a.templates = a.root + "/templates";
  if (a.out.empty()) a.out = a.root + "/generated";
  for (const std::string& arch : a.arches) {
    try {
      arch_info(arch);
    } catch (const std::runtime_error& e) {
      usage(std::string("--arch: ") + e.what());
    }
  }
  if (a.arches.empty()) {
    for (const auto& [arch, dir] : a.arch_include_dirs) {
      if (std::find(a.arches.begin(), a.arches.end(), arch) == a.arches.end()) {
        a.arches.push_back(arch);
      }
    }
  }
  if (a.arches.empty()) a.arches = known_arches();
  for (const auto& [arch, dir] : a.arch_include_dirs) {
    if (std::find(a.arches.begin(), a.arches.end(), arch) == a.arches.end()) {
      usage("--include-dir " + arch + "=" + dir + " names an arch that --arch does not select");
    }
  }
  return a;
}

std::vector<std::string> include_dirs_for(const Args& a, const std::string& arch) {
  std::vector<std::string> dirs;
  for (const auto& [which, dir] : a.arch_include_dirs) {
    if (which == arch) dirs.push_back(dir);
  }
  dirs.insert(dirs.end(), a.include_dirs.begin(), a.include_dirs.end());
  return dirs;  // empty: the arch's Debian defaults
}

// What regenerating changes in the API, against the kvm_api.json about to be replaced. Only a
// report: a previous model that cannot be read does not stop regeneration.
void report_api_changes(const fs::path& old_json, const std::string& new_json) {
  if (!fs::exists(old_json)) return;
  try {
    std::string old_text = read_api_json(old_json.string());
    if (old_text == new_json) return;
    ApiDiff d = diff_api(old_text, new_json, old_json.string(), "regenerated");
    if (!d.changes.empty()) std::cout << diff_to_text(d);
  } catch (const std::exception& e) {
    std::cout << "note: cannot compare with the previous model: " << e.what() << "\n";
  }
}

int generate_or_check(const Args& args) {
  Rules rules = load_rules(args.rules);
  int stale = 0;
  for (const std::string& arch : args.arches) {
    ParseOptions opts;
    opts.arch = arch;
    opts.include_dirs = include_dirs_for(args, arch);
    opts.source = args.source;
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::duration d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) +
             " ms";
    };
    auto t0 = Clock::now();
    Model model = build_model(opts, rules);
    auto t1 = Clock::now();
    Rendered files = render_all(model, args.templates);
    auto t2 = Clock::now();
    fs::path dir = fs::path(args.out) / arch;
    bool write = args.command == "generate";
    if (write && !args.quiet) report_api_changes(dir / "kvm_api.json", files["kvm_api.json"]);
    stale += sync_output(files, dir.string(), write ? OutputMode::Write : OutputMode::Check);
    if (!args.quiet) {
      std::size_t usable = 0;
      for (const auto& io : model.ioctls) usable += io.available && !io.deprecated;
      std::cout << arch << ": Linux " << model.linux_version << ", " << model.families.size()
                << " families, " << model.constants.size() << " constants, " << model.ioctls.size()
                << " ioctls (" << usable << " usable), " << model.records.size() << " records -> "
                << dir.string() << " (parsed in " << ms(t1 - t0) << ", rendered in " << ms(t2 - t1)
                << ", " << (write ? "written" : "compared") << " in " << ms(Clock::now() - t2)
                << ")\n";
      if (args.verbose) {
        for (const auto& n : model.notes) std::cout << "  note: " << n << "\n";
      } else if (!model.notes.empty()) {
        std::cout << "  " << model.notes.size()
                  << " notes on how the header was read (--verbose shows them)\n";
      }
    }
  }
  if (stale) {
    std::cout << stale << " generated file(s) differ from a fresh run; regenerate with "
              << "`bazel run //generator:regenerate`\n";
    return 1;
  }
  return 0;
}

// Exit status as diff(1): 0 no API change, 1 changes, 2 trouble.
int diff(const Args& args) {
  const std::string& old_path = args.positional[0];
  const std::string& new_path = args.positional[1];
  ApiDiff d = diff_api(read_api_json(old_path), read_api_json(new_path), old_path, new_path);
  std::cout << (args.json ? diff_to_json(d) : diff_to_text(d));
  return d.changes.empty() ? 0 : 1;
}

int print_arches() {
  for (const kvmgen::ArchInfo& a : kvmgen::all_arches())
    std::cout << a.arch << " " << a.triple << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  try {
    if (args.command == "arches") return print_arches();
    return args.command == "diff" ? diff(args) : generate_or_check(args);
  } catch (const std::exception& e) {
    std::cerr << "kvmgen: " << e.what() << "\n";
    return 2;
  }
}

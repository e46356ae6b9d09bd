// What our headers cost at every compile: `g++ -std=c++20 -O2 -c` of a translation unit that
// includes nothing but
//   linux_kvm_h  <linux/kvm.h>                       (the baseline)
//   kvm_abi_h    "kvm/abi/kvm_abi.h"                  (the generated bindings)
//   kvm_h        "kvm/kvm.h"                          (the whole public runtime)
//   std_h        the standard headers the runtime's public headers include (kStdHeaders), and
//                nothing of ours: the floor under kvm_h while the API uses those types
//   kvm_h_pch    "kvm/kvm.h" through a precompiled header, which is built once before the turns
//                (untimed, as a build system builds it once per target) with the same flags;
//                -Werror=invalid-pch makes a header g++ cannot use fail the compile
// interleaved one compile each per turn. The time judged is the compiler's CPU time (user +
// system of g++ and its children, from wait4), which other load on a shared machine disturbs
// far less than wall time; the wall time is reported next to it ("<side>_wall").
//
// Flags: --cxx=g++  --cxxflags="-std=c++20 -O2"
//        --generated_dir=generated/x86_64  --runtime_dir=runtime   (relative to the cwd)
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench.h"

extern char** environ;

namespace bench {
namespace {

const bool flags_declared =
    declare_flag("cxx", "g++") && declare_flag("cxxflags", "-std=c++20 -O2") &&
    declare_flag("generated_dir", "generated/x86_64") && declare_flag("runtime_dir", "runtime");

struct Failure {
  std::string what;
};

std::vector<std::string> split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char buf[4096];
  if (!getcwd(buf, sizeof buf)) throw Failure{"getcwd failed"};
  return std::string(buf) + "/" + path;
}

// A temporary directory holding the translation units and the precompiled header; removed on
// destruction.
struct Sources {
  static constexpr const char* kPchHeader = "kvm_pch.h";
  std::string dir;
  Sources() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string templ = std::string(tmp ? tmp : "/tmp") + "/compile_bench.XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw Failure{"mkdtemp: " + std::string(std::strerror(errno))};
    dir = buf.data();
  }
  ~Sources() {
    for (const char* f : {"linux_kvm_h.cc", "kvm_abi_h.cc", "kvm_h.cc", "std_h.cc", "kvm_h_pch.cc",
                          "kvm_pch.h", "kvm_pch.h.gch"})
      unlink((dir + "/" + f).c_str());
    rmdir(dir.c_str());
  }
  std::string write(const std::string& name, const std::string& include) const {
    return write_file(name + ".cc", "#include " + include + "\n");
  }
  std::string write_file(const std::string& name, const std::string& text) const {
    std::string path = dir + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
};

// Compiles one translation unit per call; run(n) returns the compiler's CPU seconds.
class CompileSide final : public Side {
 public:
  CompileSide(std::string name, std::vector<std::string> argv)
      : Side(std::move(name)), argv_(std::move(argv)) {}

  double run(std::size_t n) override {
    double cpu = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i) cpu += compile_once(argv_);
    wall_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return cpu;
  }
  const char* secondary_name() const override { return "wall"; }
  double secondary() const override { return wall_; }

  // Runs argv once; the compiler's CPU seconds. Throws Failure when it fails.
  static double compile_once(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
    if (rc != 0) throw Failure{"cannot run " + argv[0] + ": " + std::strerror(rc)};
    int status = 0;
    struct rusage ru {};
    if (wait4(pid, &status, 0, &ru) != pid)
      throw Failure{"wait4: " + std::string(std::strerror(errno))};
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string cmd;
      for (const std::string& a : argv) cmd += a + " ";
      throw Failure{"compile failed: " + cmd};
    }
    auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return secs(ru.ru_utime) + secs(ru.ru_stime);
  }

 private:
  std::vector<std::string> argv_;
  double wall_ = 0;
};

// The standard headers runtime/kvm/*.h include (for libstdc++: <bits/chrono.h> is what vcpu.h
// takes instead of <chrono> there). bench/header_cost.py lists them from the sources; the smoke
// test fails when this list and that one differ.
constexpr const char* kStdHeaders[] = {
    "<bits/chrono.h>", "<cerrno>",           "<cstddef>",     "<cstdint>",     "<cstdio>",
    "<cstring>",       "<initializer_list>", "<new>",         "<optional>",    "<signal.h>",
    "<span>",          "<stdexcept>",        "<string>",      "<string_view>", "<sys/ioctl.h>",
    "<sys/types.h>",   "<system_error>",     "<type_traits>", "<unistd.h>",    "<utility>",
    "<vector>"};

std::string std_includes() {
  std::string out;
  for (const char* h : kStdHeaders) out += std::string(out.empty() ? "" : "\n#include ") + h;
  return out;
}

void compile_bench(benchmark::State& st) {
  try {
    Sources src;
    // The compiler and flags of every side. kvm_h_pch's translation unit sits next to
    // kvm_pch.h, so its quoted include finds kvm_pch.h.gch there.
    auto compiler = [&](std::vector<std::string> more) {
      std::vector<std::string> argv{flag("cxx")};
      for (const std::string& f : split(flag("cxxflags"))) argv.push_back(f);
      argv.insert(argv.end(),
                  {"-I" + absolute(flag("generated_dir")), "-I" + absolute(flag("runtime_dir"))});
      argv.insert(argv.end(), more.begin(), more.end());
      return argv;
    };
    auto command = [&](const std::string& name, const std::string& include,
                       std::vector<std::string> more = {}) {
      more.insert(more.end(), {"-c", src.write(name, include), "-o", "/dev/null"});
      return std::make_unique<CompileSide>(name, compiler(std::move(more)));
    };
    std::string pch = src.write_file(Sources::kPchHeader, "#include \"kvm/kvm.h\"\n");
    CompileSide::compile_once(compiler({"-x", "c++-header", pch, "-o", pch + ".gch"}));
    interleave(st,
               sides(command("linux_kvm_h", "<linux/kvm.h>"),
                     command("kvm_abi_h", "\"kvm/abi/kvm_abi.h\""),
                     command("kvm_h", "\"kvm/kvm.h\""), command("std_h", std_includes()),
                     command("kvm_h_pch", std::string("\"") + Sources::kPchHeader + "\"",
                             {"-Winvalid-pch", "-Werror=invalid-pch"})),
               1);
  } catch (const Failure& f) {
    st.SkipWithError(f.what.c_str());
  }
}

const bool registered = [] {
  benchmark::RegisterBenchmark("compile", compile_bench)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  compare({"compile: generated bindings vs <linux/kvm.h>", "compile", "linux_kvm_h", "kvm_abi_h",
           Goal::MaxRatio, 2.0});
  compare(
      {"compile: whole runtime header", "compile", "linux_kvm_h", "kvm_h", Goal::MaxTime, 2.5e8});
  compare({"compile: whole runtime header, precompiled", "compile", "linux_kvm_h", "kvm_h_pch",
           Goal::MaxTime, 2.5e8});
  compare(
      {"compile: the standard headers of the runtime's API", "compile", "linux_kvm_h", "std_h"});
  compare({"compile: whole runtime header vs its standard headers", "compile", "std_h", "kvm_h"});
  compare(
      {"compile, wall time: generated bindings", "compile", "linux_kvm_h_wall", "kvm_abi_h_wall"});
  compare(
      {"compile, wall time: whole runtime header", "compile", "linux_kvm_h_wall", "kvm_h_wall"});
  return true;
}();

}  // namespace
}  // namespace bench

// Fuzzes kvmgen's model builder (generator/parse.h) with mutated kernel headers.
//
// The input becomes linux/kvm.h of a header tree in a temporary directory; the rest of the
// tree (linux/types.h, linux/ioctl.h, linux/version.h, asm/kvm.h) is copied once from the
// fixture tests/generator/fixtures/basic. kvmgen::build_model() parses it for x86_64
// with the real rules (generator/*.rules): it must return a model or throw an exception derived
// from std::exception (a header kvmgen cannot represent), never crash, hang or corrupt memory.
//
// Paths are relative to the source root: the current directory, or $KVM_FUZZ_SRCDIR.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz/fuzz_util.h"
#include "generator/parse.h"
#include "generator/rules.h"

namespace fs = std::filesystem;

namespace {

struct Tree {
  fs::path dir;
  kvmgen::Rules rules;

  Tree() {
    // libclang's crash recovery (on by default, as in kvmgen) installs its own signal
    // handlers at the first clang_createIndex(); a stack overflow in kvmgen's code would then
    // kill the process without a sanitizer report or a saved reproducer. Turn it off so that
    // every crash, in kvmgen or in libclang, is reported with its stack and input (set
    // KVM_FUZZ_CLANG_CRASH_RECOVERY=1 to keep it, i.e. to test as kvmgen runs).
    // libclang also parses each input on a thread of its own (8 MiB of stack, a new thread
    // per input): a CI run once died in such a thread (T2865) of a SEGV that ASan could not
    // unwind, and libFuzzer wrote no reproducer. LIBCLANG_NOTHREADS parses on the fuzzer's
    // thread, whose stack is as large, so that a crash there comes with its input.
    const char* keep = std::getenv("KVM_FUZZ_CLANG_CRASH_RECOVERY");
    if (!keep || std::string(keep) != "1") {
      ::setenv("LIBCLANG_DISABLE_CRASH_RECOVERY", "1", 1);
      ::setenv("LIBCLANG_NOTHREADS", "1", 1);
    }

    const char* src = std::getenv("KVM_FUZZ_SRCDIR");
    fs::path root = src && *src ? fs::path(src) : fs::current_path();
    fs::path fixture = root / "tests/generator/fixtures/basic";
    rules = kvmgen::load_rules(
        {(root / "generator").string(), (root / "tests/generator/fixtures/rules").string()});

    const char* tmp = std::getenv("TEST_TMPDIR");
    if (!tmp || !*tmp) tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/kvmgen_fuzz.XXXXXX";
    if (!::mkdtemp(templ.data())) kvm_fuzz::fail("mkdtemp failed");
    dir = templ;
    fs::create_directories(dir / "linux");
    fs::create_directories(dir / "asm");
    for (const char* f : {"linux/types.h", "linux/ioctl.h", "linux/version.h", "asm/kvm.h"}) {
      fs::copy_file(fixture / f, dir / f);
    }
  }
  ~Tree() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Tree& tree() {
  static Tree t;
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Tree& t = tree();
  {
    std::ofstream out(t.dir / "linux/kvm.h", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) kvm_fuzz::fail("cannot write the header under test");
  }
  kvmgen::ParseOptions o;
  o.arch = "x86_64";
  o.include_dirs = {t.dir.string()};
  try {
    kvmgen::Model m = kvmgen::build_model(o, t.rules);
    FUZZ_CHECK(m.arch == "x86_64");
  } catch (const std::exception& e) {
    // A header kvmgen refuses: the documented outcome. The message must be readable.
    kvm_fuzz::touch(e.what(), std::char_traits<char>::length(e.what()));
  }
  return 0;
}

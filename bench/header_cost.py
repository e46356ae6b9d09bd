#!/usr/bin/env python3
"""Why our headers cost what they cost: compile time of rewritten copies of them.

    bench/header_cost.py [--turns 9] [--source-dir .]

compile_bench measures the headers as they are; this diagnostic measures what each part of
them costs, by compiling (g++ -std=c++20 -O2 -c, CPU time of the compiler, the same turns
interleaved) translation units that include:

  linux/kvm.h      <linux/kvm.h> alone (the baseline)
  kvm_abi.h        the generated bindings as they are
  lite             the same bindings with <array>, <optional>, <string>, <string_view>,
                   <concepts> and <type_traits> replaced by a 40-line string_view/array/
                   optional of their own (flags_to_string, the one user of std::string,
                   left out: it would move to a separate header)
  lite-asserts     lite without the layout static_asserts of structs.h (they would move to a
                   header only the tests include; the cross-check test covers them anyway)
  lite-asserts-table   also without the all_ioctls table and ioctl_name()
  lean             also without the EnumTraits name tables and the ioctls' name/capability
                   members (enums, constants, structs and ioctl numbers/types remain)
  std: runtime     exactly the standard headers that runtime/kvm/*.h include, nothing else
  std: runtime - heavy   the same minus <memory>, <atomic>, <functional>, <map>, <algorithm>
  kvm/kvm.h        the whole runtime header as it is

The copies are made in a temporary directory by textual rewrites of the generated files; a
rewrite whose pattern is not found (the generator's output changed) is reported, that
variant and the ones after it are skipped, and the exit status is 1 (the smoke test runs this
once, so the rewrites cannot silently rot). Nothing in the tree is modified.
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHIM = r'''
// header_cost.py: minimal replacements for std::string_view, std::array, std::optional.
namespace kvm::abi::lite {
using size_t = decltype(sizeof 0);
struct string_view {
  const char* p = "";
  size_t n = 0;
  constexpr string_view() = default;
  constexpr string_view(const char* s) : p(s), n(__builtin_strlen(s)) {}
  constexpr bool empty() const { return n == 0; }
  constexpr size_t size() const { return n; }
  constexpr const char* data() const { return p; }
  friend constexpr bool operator==(string_view a, string_view b) {
    if (a.n != b.n) return false;
    for (size_t i = 0; i < a.n; ++i)
      if (a.p[i] != b.p[i]) return false;
    return true;
  }
};
template <class T, size_t N>
struct array {
  T elems[N];
  constexpr const T* begin() const { return elems; }
  constexpr const T* end() const { return elems + N; }
  constexpr size_t size() const { return N; }
  constexpr const T& operator[](size_t i) const { return elems[i]; }
};
struct nullopt_t {
  explicit constexpr nullopt_t(int) {}
};
inline constexpr nullopt_t nullopt{0};
template <class T>
struct optional {
  bool has = false;
  T v{};
  constexpr optional(nullopt_t) {}
  constexpr optional(T x) : has(true), v(x) {}
  constexpr explicit operator bool() const { return has; }
  constexpr const T& operator*() const { return v; }
};
}  // namespace kvm::abi::lite
'''

HEAVY = {"memory", "atomic", "functional", "map", "algorithm"}


class Skip(Exception):
    pass


def sub(pattern, repl, text, what, flags=0, count=0):
    new, n = re.subn(pattern, repl, text, count=count, flags=flags)
    if n == 0:
        raise Skip(f"pattern for {what} not found")
    return new


def make_lite(abi):
    es = open(os.path.join(abi, "enum_support.h")).read()
    es = sub(r"\n(// [^\n]*\n)*template <KvmFlags E>\nstd::string flags_to_string\(E v\) \{\n.*?\n\}\n", "\n",
             es, "flags_to_string", flags=re.S)
    es = sub(r"#pragma once\n", "#pragma once\n" + SHIM, es, "#pragma once", count=1)
    es = sub(r"std::underlying_type_t<E>", "__underlying_type(E)", es, "std::underlying_type_t")
    open(os.path.join(abi, "enum_support.h"), "w").write(es)
    for name in os.listdir(abi):
        path = os.path.join(abi, name)
        s = open(path).read()
        s = re.sub(r"#include <(array|optional|string_view|string|concepts|type_traits)>\n", "", s)
        for t in ("string_view", "array", "optional", "nullopt"):
            s = s.replace("std::" + t, "lite::" + t)
        open(path, "w").write(s)


def drop_asserts(abi):
    path = os.path.join(abi, "structs.h")
    s = sub(r"static_assert\([^;]*\);\n", "", open(path).read(), "layout static_asserts")
    open(path, "w").write(s)


def drop_table(abi):
    path = os.path.join(abi, "ioctls.h")
    s = sub(r"\n(// [^\n]*\n)*inline constexpr lite::array<IoctlInfo,.*?(?=\}  // namespace kvm::abi)", "\n",
            open(path).read(), "all_ioctls", flags=re.S)
    open(path, "w").write(s)


def drop_names(abi):
    path = os.path.join(abi, "constants.h")
    s = sub(r"template <>\nstruct EnumTraits<\w+> \{.*?\n\};\n", "", open(path).read(), "EnumTraits", flags=re.S)
    open(path, "w").write(s)
    path = os.path.join(abi, "ioctls.h")
    s = open(path).read()
    s = sub(r"  static constexpr lite::string_view name = \"\w+\";\n", "", s, "ioctl names")
    s = sub(r"  static constexpr lite::optional<Cap> capability = [^;]*;\n", "", s, "ioctl capabilities")
    open(path, "w").write(s)


def runtime_std_headers(runtime):
    found = set()
    kvm = os.path.join(runtime, "kvm")
    for name in sorted(os.listdir(kvm)):
        if name.endswith(".h"):
            found |= set(re.findall(r"^#include <([^>]+)>", open(os.path.join(kvm, name)).read(), re.M))
    return sorted(found)


def cpu_seconds(argv):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, capture_output=True, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{p.stderr[:2000]}")
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turns", type=int, default=9)
    p.add_argument("--source-dir", default=REPO)
    p.add_argument("--cxx", default="g++")
    p.add_argument("--cxxflags", default="-std=c++20 -O2")
    args = p.parse_args()
    generated = os.path.join(os.path.abspath(args.source_dir), "generated", "x86_64")
    runtime = os.path.join(os.path.abspath(args.source_dir), "runtime")

    with tempfile.TemporaryDirectory(prefix="header_cost.", dir=os.environ.get("TEST_TMPDIR")) as tmp:
        variants = []  # (name, include line, include dirs)
        variants.append(("linux/kvm.h", "<linux/kvm.h>", []))
        variants.append(("kvm_abi.h", '"kvm/abi/kvm_abi.h"', [generated]))
        steps = [("lite", [make_lite]), ("lite-asserts", [drop_asserts]),
                 ("lite-asserts-table", [drop_table]), ("lean", [drop_names])]
        done = []
        stale = False
        for name, fns in steps:
            tree = os.path.join(tmp, name)
            shutil.copytree(os.path.join(generated, "kvm"), os.path.join(tree, "kvm"))
            abi = os.path.join(tree, "kvm", "abi")
            try:
                for fn in done + fns:
                    fn(abi)
            except Skip as e:
                print(f"header_cost: cannot build variant {name}: {e}. The generated headers changed; "
                      "update the rewrite in bench/header_cost.py.", file=sys.stderr, flush=True)
                stale = True
                break
            done += fns
            variants.append((name, '"kvm/abi/kvm_abi.h"', [tree]))
        std = runtime_std_headers(runtime)
        variants.append(("std: runtime", "\n#include ".join(f"<{h}>" for h in std), []))
        variants.append(("std: runtime - heavy",
                         "\n#include ".join(f"<{h}>" for h in std if h not in HEAVY), []))
        variants.append(("kvm/kvm.h", '"kvm/kvm.h"', [generated, runtime]))

        commands = []
        for i, (name, include, dirs) in enumerate(variants):
            src = os.path.join(tmp, f"tu{i}.cc")
            open(src, "w").write(f"#include {include}\n")
            commands.append([args.cxx] + args.cxxflags.split() + [f"-I{d}" for d in dirs] +
                            ["-c", src, "-o", os.devnull])
        times = [[] for _ in variants]
        for turn in range(args.turns):
            order = list(range(len(variants)))
            order = order[turn % len(order):] + order[:turn % len(order)]
            for i in order:
                times[i].append(cpu_seconds(commands[i]))
            print(f"header_cost: turn {turn + 1}/{args.turns} done", flush=True)

    base = statistics.median(times[0])
    print(f"\n{'translation unit includes':24s} {'CPU median':>11s} {'x linux/kvm.h':>14s}")
    for (name, _, _), t in zip(variants, times):
        m = statistics.median(t)
        print(f"{name:24s} {m * 1000:8.1f} ms {m / base:13.1f}x")
    print(f"\nstd headers of runtime/kvm/*.h: {' '.join(std)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Why our headers cost what they cost: compile time of each part of them, and per arch.

    bench/header_cost.py [--turns 9] [--source-dir .]      the parts, x86_64, with g++
    bench/header_cost.py --arches [--turns 5]              every arch, with clang-16 --target

compile_bench measures the headers as users include them; this diagnostic splits the cost. It
compiles translation units that include one thing each, interleaved over the turns, and reports
the median CPU time of the compiler (user + system of it and its children).

The parts (g++ -std=c++20 -O2 -c, the compiler Bazel and CMake use here):

  linux/kvm.h         <linux/kvm.h> alone (the baseline)
  kvm_abi.h           the generated bindings: constants, records, ioctl descriptors; no standard
                      headers beyond <cstddef>/<cstdint>
  kvm_abi.h+names.h   plus the kernel names of constants (to_string, from_string), which bring
                      <string>, <string_view> and <optional>
  structs.h           the records alone
  layout.h            the layout asserts (and the records): what layout_check.cc compiles once
  ioctl_table.h       the table of all ioctls (and the descriptors), for tools that list them
  std: runtime        exactly the standard headers that runtime/kvm/*.h include, nothing else:
                      the floor kvm/kvm.h cannot go below while its API uses these types
  kvm/kvm.h           the whole runtime header as it is
  kvm/kvm.h, precompiled   the same through a precompiled header (g++ -x c++-header, built
                      once and not timed): what each translation unit of a build that
                      precompiles kvm/kvm.h pays

--arches compiles, for every arch in generated/, <linux/kvm.h> of the headers the bindings were
made from (tools/kernel_headers.sh's `newest`), kvm_abi.h, kvm_abi.h+names.h and, for the arches
the runtime supports, kvm/kvm.h, each with `clang++-16 --target=<triple> -std=c++20
-fsyntax-only` (no code generation, so the arches compare among themselves, not with g++).
Nothing in the tree is modified.
"""

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runtime_std_headers(runtime):
    """The <...> headers runtime/kvm/*.h include, taking the first branch of an #if/#else."""
    found = set()
    kvm = os.path.join(runtime, "kvm")
    for name in sorted(os.listdir(kvm)):
        if not name.endswith(".h"):
            continue
        depth_in_else = []  # one entry per open #if: are we in its #else/#elif branch?
        for line in open(os.path.join(kvm, name)):
            s = line.strip()
            if re.match(r"#\s*if", s):
                depth_in_else.append(False)
            elif re.match(r"#\s*(else|elif)", s) and depth_in_else:
                depth_in_else[-1] = True
            elif re.match(r"#\s*endif", s) and depth_in_else:
                depth_in_else.pop()
            elif not any(depth_in_else):
                m = re.match(r"#\s*include <([^>]+)>", s)
                if m:
                    found.add(m.group(1))
    return sorted(found)


def clang_triples():
    """Arch -> triple, from tools/clang_target_test.bzl (TRIPLES), plus the runtime's arches."""
    text = open(os.path.join(REPO, "tools", "clang_target_test.bzl")).read()
    block = re.search(r"^TRIPLES = \{(.*?)^\}", text, re.M | re.S).group(1)
    triples = dict(re.findall(r'"([^"]+)":\s*"([^"]+)"', block))
    runtime = re.findall(r'"([^"]+)"', re.search(r"^RUNTIME_ARCHES = \[(.*?)\]", text, re.M).group(1))
    return triples, set(runtime)


def cpu_seconds(argv):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, capture_output=True, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{p.stderr[:2000]}")
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def measure(commands, turns, label):
    """Median CPU seconds of each command, the commands interleaved, rotated every turn."""
    times = [[] for _ in commands]
    for turn in range(turns):
        order = list(range(len(commands)))
        order = order[turn % len(order):] + order[:turn % len(order)]
        for i in order:
            times[i].append(cpu_seconds(commands[i]))
        print(f"header_cost: {label}turn {turn + 1}/{turns} done", flush=True)
    return [statistics.median(t) for t in times]


def write_tu(tmp, name, includes):
    path = os.path.join(tmp, re.sub(r"\W", "_", name) + ".cc")
    with open(path, "w") as f:
        for inc in includes:
            f.write(f"#include {inc}\n")
    return path


def parts(args, tmp):
    source = os.path.abspath(args.source_dir)
    generated = os.path.join(source, "generated", "x86_64")
    runtime = os.path.join(source, "runtime")
    std = runtime_std_headers(runtime)
    variants = [  # (name, includes, include dirs)
        ("linux/kvm.h", ["<linux/kvm.h>"], []),
        ("kvm_abi.h", ['"kvm/abi/kvm_abi.h"'], [generated]),
        ("kvm_abi.h+names.h", ['"kvm/abi/kvm_abi.h"', '"kvm/abi/names.h"'], [generated]),
        ("structs.h", ['"kvm/abi/structs.h"'], [generated]),
        ("layout.h", ['"kvm/abi/layout.h"'], [generated]),
        ("ioctl_table.h", ['"kvm/abi/ioctl_table.h"'], [generated]),
        ("std: runtime", [f"<{h}>" for h in std], []),
        ("kvm/kvm.h", ['"kvm/kvm.h"'], [generated, runtime]),
    ]
    commands = [[args.cxx] + args.cxxflags.split() + [f"-I{d}" for d in dirs] +
                ["-c", write_tu(tmp, name, inc), "-o", os.devnull] for name, inc, dirs in variants]
    # kvm/kvm.h through a precompiled header (built once, untimed), as a build that
    # precompiles it gets it in every translation unit.
    pch_dir = os.path.join(tmp, "pch")
    os.makedirs(pch_dir)
    pch = os.path.join(pch_dir, "kvm_all.h")
    open(pch, "w").write('#include "kvm/kvm.h"\n')
    flags = args.cxxflags.split() + [f"-I{generated}", f"-I{runtime}"]
    subprocess.run([args.cxx] + flags + ["-x", "c++-header", pch, "-o", pch + ".gch"], check=True)
    variants.append(("kvm/kvm.h, precompiled", ['"kvm_all.h"'], [pch_dir, generated, runtime]))
    # -Werror=invalid-pch: a header gcc found but could not use fails instead of compiling slowly.
    commands.append([args.cxx] + flags + [f"-I{pch_dir}", "-Winvalid-pch", "-Werror=invalid-pch", "-c",
                     write_tu(tmp, "pch_user", ['"kvm_all.h"']),
                     "-o", os.devnull])
    medians = measure(commands, args.turns, "")
    print(f"\n{'translation unit includes':24s} {'CPU median':>11s} {'x linux/kvm.h':>14s}")
    for (name, _, _), m in zip(variants, medians):
        print(f"{name:24s} {m * 1000:8.1f} ms {m / medians[0]:13.2f}x")
    print(f"\nstd headers of runtime/kvm/*.h: {' '.join(std)}")
    print(f"kvm/kvm.h above that floor: {(medians[-2] - medians[-3]) * 1000:.1f} ms")


def kernel_include(arch):
    root = subprocess.run([os.path.join(REPO, "tools", "kernel_headers.sh"), "--root"],
                          capture_output=True, text=True, check=True).stdout.strip()
    path = os.path.join(root, "newest", arch, "include")
    if not os.path.isdir(path):
        raise RuntimeError(f"{path} is missing: run tools/kernel_headers.sh newest")
    return path


def arches(args, tmp):
    source = os.path.abspath(args.source_dir)
    triples, runtime_arches = clang_triples()
    rows = []  # (arch, [(column, command)])
    for arch in sorted(os.listdir(os.path.join(source, "generated"))):
        if arch not in triples:
            continue
        triple = triples[arch]
        base = ["clang++-16", f"--target={triple}", "-std=c++20", "-fsyntax-only"]
        if triple.startswith("loongarch64"):
            # No Debian 12 cross package: the fetched sysroot, whose libc wants the kernel's
            # uapi headers (linux/errno.h) from the fetched tree too, as clang_target_test does.
            base += [f"--sysroot={os.path.join(REPO, '.cache', 'sysroot', 'loongarch64')}",
                     "-isystem", kernel_include(arch)]
        generated = os.path.join(source, "generated", arch)
        cells = [
            ("linux/kvm.h", ["<linux/kvm.h>"], [kernel_include(arch)]),
            ("kvm_abi.h", ['"kvm/abi/kvm_abi.h"'], [generated]),
            ("+names.h", ['"kvm/abi/kvm_abi.h"', '"kvm/abi/names.h"'], [generated]),
        ]
        if arch in runtime_arches:
            cells.append(("kvm/kvm.h", ['"kvm/kvm.h"'], [generated, os.path.join(source, "runtime")]))
        rows.append((arch, [(col, base + [f"-I{d}" for d in dirs] + [write_tu(tmp, f"{arch}_{col}", inc)])
                            for col, inc, dirs in cells]))
    commands = [c for _, cells in rows for _, c in cells]
    medians = iter(measure(commands, args.turns, "arches: "))
    print(f"\n{'arch':12s} {'linux/kvm.h':>12s} {'kvm_abi.h':>18s} {'+ names.h':>18s} {'kvm/kvm.h':>18s}"
          "   (clang-16 -fsyntax-only, CPU median, x linux/kvm.h)")
    for arch, cells in rows:
        values = [next(medians) for _ in cells]
        out = f"{arch:12s} {values[0] * 1000:9.1f} ms"
        for v in values[1:]:
            out += f" {v * 1000:8.1f} ms {v / values[0]:5.2f}x"
        print(out)


def check_compile_bench(path, runtime):
    """compile_bench.cc's kStdHeaders must be the standard headers the runtime includes."""
    text = open(path).read()
    listed = sorted(re.findall(r'"<([^>]+)>"', re.search(r"kStdHeaders\[\] = \{(.*?)\};", text, re.S).group(1)))
    actual = runtime_std_headers(runtime)
    if listed != actual:
        print(f"header_cost: {path}: kStdHeaders is {listed}, but runtime/kvm/*.h include {actual}")
        return 1
    print(f"header_cost: {path}: kStdHeaders matches the {len(actual)} standard headers of runtime/kvm/*.h")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turns", type=int, default=9)
    p.add_argument("--source-dir", default=REPO)
    p.add_argument("--cxx", default="g++")
    p.add_argument("--cxxflags", default="-std=c++20 -O2")
    p.add_argument("--arches", action="store_true", help="every arch, with clang-16 --target")
    p.add_argument("--check-compile-bench", metavar="FILE",
                   help="only check that FILE's kStdHeaders lists the runtime's standard headers")
    args = p.parse_args()
    if args.check_compile_bench:
        return check_compile_bench(args.check_compile_bench, os.path.join(os.path.abspath(args.source_dir), "runtime"))
    with tempfile.TemporaryDirectory(prefix="header_cost.", dir=os.environ.get("TEST_TMPDIR")) as tmp:
        if args.arches:
            arches(args, tmp)
        else:
            parts(args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Why our headers cost what they cost: compile time of each part of them.

    bench/header_cost.py [--turns 9] [--source-dir .]

compile_bench measures the headers as users include them; this diagnostic splits the cost by
compiling (g++ -std=c++20 -O2 -c, CPU time of the compiler, the same turns interleaved)
translation units that include:

  linux/kvm.h        <linux/kvm.h> alone (the baseline)
  kvm_abi.h          the generated bindings (constants, structs with their layout asserts,
                     ioctl descriptors): no standard headers beyond <cstddef>/<cstdint>
  kvm_abi.h+names.h  plus the kernel names of constants (to_string, from_string), which
                     bring <string>, <string_view>, <optional> and <array>
  structs.h          the layout part alone
  std: runtime       exactly the standard headers that runtime/kvm/*.h include, nothing else
  std: runtime - heavy   the same minus <memory>, <atomic>, <functional>, <map>, <algorithm>
  kvm/kvm.h          the whole runtime header as it is

(An earlier version of this script rewrote the generated headers to show that their standard
library includes were 80% of their cost; the generator now emits them that way: names.h is
split off and the bindings use no standard library headers.) Nothing in the tree is modified.
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

HEAVY = {"memory", "atomic", "functional", "map", "algorithm"}


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
        variants.append(("kvm_abi.h+names.h", '"kvm/abi/kvm_abi.h"\n#include "kvm/abi/names.h"', [generated]))
        variants.append(("structs.h", '"kvm/abi/structs.h"', [generated]))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

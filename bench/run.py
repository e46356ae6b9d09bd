#!/usr/bin/env python3
"""Builds and runs every benchmark, then prints one table of medians and ratios.

    bench/run.py                      # bazel build -c opt, then all benchmarks (~1.5 min + build)
    bench/run.py --markdown out.md    # also write the table as Markdown
    bench/run.py --smoke --no-build --bin-dir DIR   # one short iteration each (the smoke test)

Steps (each prints a line with its duration as it finishes):
  1. `bazel build -c opt //bench:kvm_bench //bench:compile_bench`
  2. kvm_bench: exit round trips, registers on every exit, VM lifecycle and reset, exit
     decoding; --repetitions runs of each, repetitions of all benchmarks randomly interleaved,
     and inside each run the raw and our sides alternate every few operations;
  3. compile_bench: g++ -O2 on <linux/kvm.h>, kvm/abi/kvm_abi.h, kvm/kvm.h, the standard
     headers of the runtime's API and a precompiled kvm/kvm.h, one of each per turn,
     --compile-turns turns;
  4. the table: per comparison, the medians of both sides and the median ratio, the target
     and whether it was met.
The exit status is 0 unless a step failed; missed targets are reported, not fatal.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[run.py] {msg}", flush=True)


def step(title, argv, cwd=None):
    """Runs argv with its output streaming through; returns its duration in seconds."""
    log(f"{title}: {' '.join(shlex.quote(a) for a in argv)}")
    t0 = time.monotonic()
    rc = subprocess.run(argv, cwd=cwd).returncode
    dt = time.monotonic() - t0
    log(f"{title}: {'done' if rc == 0 else f'FAILED (exit {rc})'} in {dt:.1f} s")
    if rc != 0:
        sys.exit(rc)
    return dt


def load_average():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def fmt_time(ns):
    if ns is None:
        return "-"
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def fmt_ratio(r):
    return "-" if r is None else f"{r:.3f}"


def table_rows(rows):
    out = []
    for r in rows:
        out.append([
            r["title"],
            f"{r['benchmark'] + ' ' if r.get('candidate_benchmark') else ''}{r['baseline']} "
            f"{fmt_time(r['baseline_ns'])}",
            f"{r['candidate_benchmark'] + ' ' if r.get('candidate_benchmark') else ''}{r['candidate']} "
            f"{fmt_time(r['candidate_ns'])}",
            fmt_ratio(r["ratio"]),
            r["target"] or "(info)",
            r["met"] or "",
        ])
    return out


HEADER = ["comparison", "baseline (median)", "candidate (median)", "cand/base", "target", "met"]


def text_table(rows):
    cells = [HEADER] + table_rows(rows)
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = []
    for n, c in enumerate(cells):
        lines.append("  ".join(c[i].ljust(widths[i]) if i != 3 else c[i].rjust(widths[i])
                               for i in range(len(HEADER))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for c in table_rows(rows):
        cells = [x.replace("|", "\\|").replace("<=", "≤").replace(">=", "≥").replace("<", "&lt;") for x in c]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def git_head():
    """The commit, and whether the measured sources differ from it."""
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "runtime", "generated", "bench"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes in runtime/, generated/ or bench/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repetitions", type=int, default=10, help="runs of each KVM benchmark (default 10)")
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds per KVM benchmark run (Google Benchmark --benchmark_min_time, default 0.5)")
    p.add_argument("--compile-turns", type=int, default=10,
                   help="compiles of each translation unit (default 10)")
    p.add_argument("--filter", default="", help="--benchmark_filter for kvm_bench (regex)")
    p.add_argument("--skip", choices=["kvm", "compile"], action="append", default=[],
                   help="leave out a binary")
    p.add_argument("--markdown", help="also write the final table as Markdown to this file")
    p.add_argument("--no-build", action="store_true", help="use already built binaries")
    p.add_argument("--bin-dir", help="where kvm_bench and compile_bench are (default: bazel's -c opt bin/bench)")
    p.add_argument("--source-dir", default=REPO,
                   help="the tree holding generated/x86_64 and runtime/ for compile_bench (default: this repo)")
    p.add_argument("--smoke", action="store_true",
                   help="one short iteration per benchmark and one compile each (for the smoke test)")
    args = p.parse_args()
    if args.smoke:
        args.repetitions, args.min_time, args.compile_turns = 1, 0.001, 1

    started = datetime.datetime.now().astimezone()
    context = [
        f"date: {started:%Y-%m-%d %H:%M %Z}; host: {platform.node()}, Linux {platform.release()}, "
        f"{os.cpu_count()} CPUs; commit {git_head()}",
        f"command: {' '.join(shlex.quote(a) for a in ['bench/run.py'] + sys.argv[1:])}",
        f"load average at start: {load_average()}",
    ]
    for line in context:
        log(line)

    if not args.no_build:
        step("build", ["bazel", "build", "-c", "opt", "//bench:kvm_bench", "//bench:compile_bench"], cwd=REPO)
    bin_dir = args.bin_dir
    if bin_dir is None:
        if args.no_build:
            bin_dir = os.path.join(REPO, "bazel-bin", "bench")
        else:
            # The convenience symlink follows whatever was built last; ask for -c opt's tree.
            out = subprocess.run(["bazel", "info", "-c", "opt", "bazel-bin"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.strip()
            bin_dir = os.path.join(out, "bench")

    rows = []
    with tempfile.TemporaryDirectory(prefix="kvm_bench.", dir=os.environ.get("TEST_TMPDIR")) as tmp:
        if "kvm" not in args.skip:
            summary = os.path.join(tmp, "kvm.json")
            argv = [os.path.join(bin_dir, "kvm_bench"),
                    f"--benchmark_repetitions={args.repetitions}",
                    f"--benchmark_min_time={args.min_time}",
                    "--benchmark_enable_random_interleaving=true",
                    f"--bench_summary={summary}"]
            if args.filter:
                argv.append(f"--benchmark_filter={args.filter}")
            step("kvm_bench", argv)
            rows += json.load(open(summary))
        if "compile" not in args.skip:
            summary = os.path.join(tmp, "compile.json")
            src = os.path.abspath(args.source_dir)
            argv = [os.path.join(bin_dir, "compile_bench"),
                    f"--benchmark_repetitions={args.compile_turns}",
                    "--benchmark_min_time=0.001",
                    f"--generated_dir={os.path.join(src, 'generated', 'x86_64')}",
                    f"--runtime_dir={os.path.join(src, 'runtime')}",
                    f"--bench_summary={summary}"]
            step("compile_bench", argv)
            rows += json.load(open(summary))

    context.append(f"load average at end: {load_average()}")
    print()
    print("\n".join(context))
    print()
    print(text_table(rows))
    missed = [r["title"] for r in rows if r["met"] == "NO"]
    print()
    print(f"{sum(r['met'] == 'yes' for r in rows)} targets met, {len(missed)} missed"
          + (": " + "; ".join(missed) if missed else ""))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join("    " + c for c in context) + "\n\n" + markdown_table(rows) + "\n")
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()

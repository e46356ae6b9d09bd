#!/usr/bin/env bash
# bench_smoke_test: every benchmark once, briefly, through bench/run.py, and one turn of the
# header-cost diagnostic. No timing is checked; a benchmark whose guest misbehaves fails.
set -euo pipefail
# The runfiles tree (the test's cwd) mirrors the workspace: bench/, generated/, runtime/.
python3 bench/run.py --smoke --no-build --bin-dir bench --source-dir .
python3 bench/header_cost.py --turns 1 --source-dir .
python3 bench/header_cost.py --check-compile-bench bench/compile_bench.cc --source-dir .

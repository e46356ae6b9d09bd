#!/usr/bin/env bash
# bench_smoke_test: every benchmark once, briefly, through bench/run.py (no timing checked).
set -euo pipefail
# The runfiles tree (the test's cwd) mirrors the workspace: bench/, generated/, runtime/.
exec python3 bench/run.py --smoke --no-build --bin-dir bench --source-dir .

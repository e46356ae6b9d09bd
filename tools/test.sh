#!/usr/bin/env bash
# Builds and runs every test: `tools/test.sh [extra bazel flags...]`
#   e.g. tools/test.sh --config=asan
#
# Keeps going after failures so all results are produced. Per-test JUnit
# reports land in bazel-testlogs/<package>/<target>/test.xml; the build event
# log of this run (used by tools/count_results.py to count exactly this run's
# tests) is written to $TEST_BEP_JSON (default: bazel-test-events.json).
# Exit status is bazel's (0 = all passed, 3 = some test failed, 1 = build
# failed, 4 = no tests found, ...).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bep="${TEST_BEP_JSON:-$PWD/bazel-test-events.json}"
rm -f "$bep"

flags=(
  --keep_going
  --test_output=errors
  --test_summary=short
  --verbose_failures
  --build_event_json_file="$bep"
)
if [[ "${CI:-}" == "true" ]]; then
  # Plain, less chatty log output for CI.
  flags+=(--color=no --curses=no --show_progress_rate_limit=15)
fi

exec bazel test "${flags[@]}" "$@" -- //...

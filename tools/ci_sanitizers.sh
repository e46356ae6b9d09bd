#!/usr/bin/env bash
# Runs the whole Bazel test suite under AddressSanitizer (+ LeakSanitizer) and
# UndefinedBehaviorSanitizer together (.bazelrc's --config=asan --config=ubsan):
#
#   tools/ci_sanitizers.sh [extra bazel test flags...]
#
# Keeps going after failures; prints Bazel's output, the failed tests, and as the LAST line
#   sanitizers: N passed, M failed
# counted by tools/count_results.py from the JUnit XML of exactly this run (its build event
# log, $SANITIZER_BEP_JSON, default bazel-sanitizers-events.json), where a test that did not
# build counts as failed.
# Exit status: 0 if bazel succeeded and every test passed, 1 otherwise.
#
# The sanitizer build lives in its own output directory (--platform_suffix), so it does not
# overwrite, and is not overwritten by, the ordinary build of tools/test.sh, and it leaves the
# bazel-* convenience symlinks alone (--symlink_prefix=/): bazel-testlogs keeps showing the
# ordinary run. It shares the Bazel server of the workspace (a second --output_base would
# make //... descend into the bazel-<workspace> symlink of the first).
set -uo pipefail
exec 2>&1  # one ordered stream: the counts line is always the last line

cd "$(dirname "${BASH_SOURCE[0]}")/.." || { echo "sanitizers: 0 passed, 0 failed"; exit 1; }

bep="${SANITIZER_BEP_JSON:-$PWD/bazel-sanitizers-events.json}"
rm -f "$bep"

start=$(date +%s)
bazel_rc=0
# tools/test.sh's flags (keep going, this run's build event log, CI output) plus the
# sanitizer configs and the separate output directory.
TEST_BEP_JSON="$bep" tools/test.sh --config=asan --config=ubsan --platform_suffix=-asan-ubsan \
  --symlink_prefix=/ "$@" </dev/null || bazel_rc=$?
echo "sanitizers: bazel test --config=asan --config=ubsan exited with status $bazel_rc" \
  "after $(($(date +%s) - start))s"

count_rc=0
counts="$(python3 tools/count_results.py --bep "$bep" 2>&1)" || count_rc=$?
if [[ $count_rc -gt 1 ]]; then  # the counter itself crashed
  printf '%s\n' "$counts"
  echo "sanitizers: 0 passed, 0 failed"
  exit 1
fi
# Its last line is "N passed, M failed"; everything before it (failed and skipped tests,
# warnings) is printed as is.
printf '%s\n' "$counts" | sed '$d'
echo "sanitizers: $(printf '%s\n' "$counts" | tail -n 1)"

[[ $bazel_rc -eq 0 && $count_rc -eq 0 ]]

#!/usr/bin/env bash
# Runs the runtime tests (//tests/runtime/...: vCPU threads, kicks, run_for timers, watchdogs)
# under ThreadSanitizer (.bazelrc's --config=tsan):
#
#   tools/ci_tsan.sh [extra bazel test flags...]
#
# Only the runtime tests: they are where threads and signals meet, and the whole suite under
# TSan would cost CI minutes for nothing. Prints Bazel's output, the failed tests, and as the
# LAST line
#   tsan: N passed, M failed
# counted by tools/count_results.py from the JUnit XML of exactly this run (its build event
# log, $TSAN_BEP_JSON, default bazel-tsan-events.json), where a test that did not build counts
# as failed. Exit status: 0 if bazel succeeded and every test passed, 1 otherwise.
#
# Like tools/ci_sanitizers.sh, the build lives in its own output directory (--platform_suffix)
# and leaves the bazel-* symlinks to the ordinary run (--symlink_prefix=/).
set -uo pipefail
exec 2>&1  # one ordered stream: the counts line is always the last line

cd "$(dirname "${BASH_SOURCE[0]}")/.." || { echo "tsan: 0 passed, 0 failed"; exit 1; }

bep="${TSAN_BEP_JSON:-$PWD/bazel-tsan-events.json}"
rm -f "$bep"
flags=(--keep_going --test_output=errors --test_summary=short --verbose_failures
  --build_event_json_file="$bep" --config=tsan --platform_suffix=-tsan --symlink_prefix=/)
if [[ "${CI:-}" == "true" ]]; then
  flags+=(--color=no --curses=no --show_progress_rate_limit=15)
fi

start=$(date +%s)
bazel_rc=0
bazel test "${flags[@]}" "$@" -- //tests/runtime/... </dev/null || bazel_rc=$?
echo "tsan: bazel test --config=tsan //tests/runtime/... exited with status $bazel_rc" \
  "after $(($(date +%s) - start))s"

count_rc=0
counts="$(python3 tools/count_results.py --bep "$bep" 2>&1)" || count_rc=$?
if [[ $count_rc -gt 1 ]]; then  # the counter itself crashed
  printf '%s\n' "$counts"
  echo "tsan: 0 passed, 0 failed"
  exit 1
fi
printf '%s\n' "$counts" | sed '$d'
echo "tsan: $(printf '%s\n' "$counts" | tail -n 1)"

[[ $bazel_rc -eq 0 && $count_rc -eq 0 ]]

#!/usr/bin/env bash
# The CMake build and its tests, as CI runs them after Bazel's (see .ci/run):
#   tools/cmake_test.sh [BUILD_DIR]
# configures CMakeLists.txt with Ninja, builds everything (keeping going past errors so that
# every test that can be built runs), then runs ctest. Results:
#   BUILD_DIR/ctest-junit.xml         ctest's own report, one <testcase> per ctest test
#   BUILD_DIR/test-results/<test>.xml  each Catch2 test's JUnit report, one <testcase> per case
# which `tools/count_results.py --ctest BUILD_DIR` counts. Prints one line per step with its
# duration. Exit status 0 only if configure, build and every test succeeded.
# BUILD_DIR defaults to $KVM_CMAKE_BUILD_DIR, else a directory under /tmp named after this
# checkout (out of the source tree, so Bazel never sees it).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

default_dir="${TMPDIR:-/tmp}/kvm-cpp-cmake-$(pwd | md5sum | cut -c1-8)"
build="${1:-${KVM_CMAKE_BUILD_DIR:-$default_dir}}"
jobs="$(nproc 2>/dev/null || echo 2)"

t0=$(date +%s%N)
step() {  # step N/3: what (seconds since the start)
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf 'cmake_test: [%s/3] %s (%d.%01d s)\n' "$1" "$2" $((ms / 1000)) $((ms % 1000 / 100))
}

mkdir -p "$build"
rm -rf "$build/test-results" "$build/ctest-junit.xml"
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi

if ! cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug -DKVM_BUILD_GENERATOR=ON > "$build/configure.log" 2>&1; then
  cat "$build/configure.log"
  step 1 "configure FAILED in $build"
  exit 1
fi
step 1 "configured $build"

build_rc=0
if [[ ${#generator[@]} -gt 0 ]]; then
  cmake --build "$build" -j "$jobs" -- -k 0 || build_rc=$?
else
  cmake --build "$build" -j "$jobs" -- -k || build_rc=$?
fi
if [[ $build_rc -ne 0 ]]; then
  step 2 "build FAILED (status $build_rc); running the tests that were built"
else
  step 2 "built the library, the examples and the tests with $jobs jobs"
fi

test_rc=0
(cd "$build" && ctest --output-junit ctest-junit.xml --output-on-failure -j "$jobs") || test_rc=$?
step 3 "ctest finished (status $test_rc)"

[[ $build_rc -eq 0 && $test_rc -eq 0 ]]

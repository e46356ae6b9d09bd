#!/usr/bin/env bash
# A Bazel workspace of its own that uses this checkout, set up exactly as README.md's "Use it
# from your Bazel workspace" shows (WORKSPACE.in and BUILD.in here are the README's text, with
# the README's placeholder path replaced by this checkout's), builds the runtime and a tiny
# VMM (tests/vendoring/install/consumer/main.cc) with no flags at all, offline, and runs it on
# /dev/kvm. CI (.ci/run) runs it:
#
#   tests/bazel_consumer/consumer_test.sh
#
# Prints one line per step and, as the LAST line,
#   bazel-consumer: N passed, M failed
# for its three checks (the README shows these files, the build, the run). The consumer gets a
# Bazel server and output base of its own in a temporary directory, removed at the end.
set -uo pipefail
exec 2>&1
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || { echo "bazel-consumer: 0 passed, 1 failed"; exit 1; }
here=tests/bazel_consumer
passed=0
failed=0
log="$(mktemp)"
check() {  # check NAME COMMAND...: runs it (its output kept for a failure), counts it
  local name="$1" t0=$SECONDS
  shift
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "bazel-consumer: PASSED $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    grep -v "linux-sandbox" "$log" | tail -n 40  # Debian's bazelrc turns on --sandbox_debug
    echo "bazel-consumer: FAILED $name ($((SECONDS - t0)) s)"
  fi
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kvm-bazel-consumer.XXXXXX")"
ws="$tmp/my_vmm"
ob="$tmp/output_base"
cleanup() {
  [[ -d "$ob" ]] && (cd "$ws" && bazel --output_base="$ob" shutdown) >/dev/null 2>&1
  chmod -R u+w "$tmp" 2>/dev/null
  rm -rf "$tmp" "$log"
}
trap cleanup EXIT

mkdir -p "$ws"
sed "s|/path/to/kvm-cpp|$PWD|" "$here/WORKSPACE.in" >"$ws/WORKSPACE"
cp "$here/BUILD.in" "$ws/BUILD.bazel"
cp tests/vendoring/install/consumer/main.cc "$ws/main.cc"

# The README's section holds WORKSPACE.in and BUILD.in verbatim, so the documented set-up is
# the tested one.
readme_shows() {
  python3 - "$here/WORKSPACE.in" "$here/BUILD.in" <<'PY'
import sys
readme = open("README.md").read()
missing = [f for f in sys.argv[1:] if open(f).read() not in readme]
for f in missing:
    print(f"README.md does not show {f} verbatim")
sys.exit(1 if missing else 0)
PY
}
check "README.md shows WORKSPACE.in and BUILD.in" readme_shows

# Exactly the README's commands; --output_base only keeps this server apart from others.
check "bazel build //:my_vmm" \
  bash -c "cd '$ws' && bazel --output_base='$ob' build --color=no --curses=no //:my_vmm"
run_vmm() {
  local out
  out="$(cd "$ws" && bazel --output_base="$ob" run --color=no --curses=no //:my_vmm)" || return 1
  grep -q "guest said: hi from the guest" <<<"$out"
}
check "bazel run //:my_vmm" run_vmm

echo "bazel-consumer: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

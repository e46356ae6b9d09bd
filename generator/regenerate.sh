#!/usr/bin/env bash
# Rewrites generated/<arch>/ in the workspace with a fresh kvmgen run (see generator/main.cc).
#
#   bazel run //generator:regenerate                      from the recorded input: the `newest`
#                                                         row of generator/kernel_headers.versions
#                                                         (fetched by tools/kernel_headers.sh)
#   bazel run //generator:regenerate -- --series 6.12     another row, likewise
#   bazel run //generator:regenerate -- KVMGEN_OPTIONS    any header trees: the options go to
#                                                         `kvmgen generate` as they are
#   ... -- --check [--series S]                           `kvmgen check` instead: exit 1 and a
#                                                         diff when generated/ is stale
# Outside Bazel (CMake's kvm_regenerate and kvmgen_check_test): set BUILD_WORKSPACE_DIRECTORY to
# the source tree and KVMGEN to the kvmgen binary.
set -euo pipefail
kvmgen="${KVMGEN:-$PWD/generator/kvmgen}"
command="generate"
if [[ "${1:-}" == "--check" ]]; then
  command="check"
  shift
fi
if [[ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then
  echo "run me with: bazel run //generator:regenerate [-- --series S | kvmgen options]" >&2
  exit 2
fi
cd "$BUILD_WORKSPACE_DIRECTORY"

series=""
if [[ $# -eq 0 ]]; then
  series=newest
elif [[ "$1" == "--series" ]]; then
  [[ $# -ge 2 ]] || { echo "regenerate: --series needs a value" >&2; exit 2; }
  series="$2"
  shift 2
fi
if [[ -z "$series" ]]; then
  exec "$kvmgen" "$command" "$@"
fi

tools/kernel_headers.sh "$series"
root="$(tools/kernel_headers.sh --root)/$series"
args=()
for tree in "$root"/*/include; do
  args+=(--include-dir "$(basename "$(dirname "$tree")")=$tree")
done
exec "$kvmgen" "$command" --source "Debian linux-libc-dev $(cat "$root/VERSION")" "${args[@]}" "$@"

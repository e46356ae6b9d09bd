#!/usr/bin/env bash
# `bazel run //tools/qemu:ci -- [ARCH-SUITE...]` and `bazel run //tools/qemu:run -- ARCH SUITE
# [PROGRAM]`: the harness works on the source tree (its downloads and builds are cached in
# .cache/qemu/), so it runs there, not in Bazel's runfiles.
set -euo pipefail
script="$1"
shift
cd "${BUILD_WORKSPACE_DIRECTORY:?run this with bazel run}"
exec "tools/qemu/$script" "$@"

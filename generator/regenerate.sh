#!/usr/bin/env bash
# Rewrites generated/<arch>/ in the workspace with a fresh kvmgen run (see generator/main.cc).
set -euo pipefail
kvmgen="$PWD/generator/kvmgen"
if [[ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then
  echo "run me with: bazel run //generator:regenerate [-- kvmgen options]" >&2
  exit 2
fi
cd "$BUILD_WORKSPACE_DIRECTORY"
exec "$kvmgen" generate "$@"

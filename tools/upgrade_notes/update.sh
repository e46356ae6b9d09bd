#!/usr/bin/env bash
# bazel run //tools/upgrade_notes:update: rewrites docs/upgrading/ in the workspace.
set -euo pipefail
kvmgen="$PWD/generator/kvmgen"
tool="$PWD/tools/upgrade_notes/upgrade_notes"
[[ -n "${BUILD_WORKSPACE_DIRECTORY:-}" ]] || { echo "run me with bazel run" >&2; exit 2; }
exec "$tool" --root "$BUILD_WORKSPACE_DIRECTORY" --kvmgen "$kvmgen" \
  --out "$BUILD_WORKSPACE_DIRECTORY/docs/upgrading"

#!/usr/bin/env bash
# Rewrites tests/generator/golden/ after an intended change to `kvmgen diff`'s output:
#   bazel build //generator:kvmgen && tests/generator/update_golden.sh
# Review the change with git diff before committing it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
kvmgen="$PWD/bazel-bin/generator/kvmgen"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for pair in basic:old newer:new; do
  "$kvmgen" generate --quiet --arch x86_64 --include-dir "tests/generator/fixtures/${pair%%:*}" \
    --out "$tmp/${pair##*:}"
done
golden="$PWD/tests/generator/golden"
cd "$tmp"
# Exit status 1 means "the models differ", which is the point here.
"$kvmgen" diff old/x86_64 new/x86_64 >"$golden/basic_to_newer.txt" || [[ $? -eq 1 ]]
"$kvmgen" diff --json old/x86_64 new/x86_64 >"$golden/basic_to_newer.json" || [[ $? -eq 1 ]]
echo "updated $golden"

#!/usr/bin/env bash
# Stub for Bazel's coverage output generator (not available offline).
# Accepts --output_file=PATH / --output_file PATH and writes an empty report.
echo "remote_coverage_tools stub: coverage merging is not available offline" >&2
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --output_file=*) out="${1#--output_file=}" ;;
    --output_file) shift; out="${1:-}" ;;
  esac
  shift || true
done
if [[ -n "$out" ]]; then
  mkdir -p "$(dirname "$out")" && : > "$out"
fi
exit 0

#!/usr/bin/env bash
# The upgrade notes in docs/upgrading/ are what upgrade_notes.py renders today.
set -euo pipefail
exec tools/upgrade_notes/upgrade_notes --root . --kvmgen generator/kvmgen --check docs/upgrading

#!/usr/bin/env python3
"""`bazel run //tools/docs:update`: rewrites docs/reference/ in the workspace from
generated/*/kvm_api.json and runtime/ (see render_docs.py)."""

import os
import sys

import render_docs  # re-runs this script under /usr/bin/python3 if needed


def main():
    ws = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not ws:
        print("run me with: bazel run //tools/docs:update", file=sys.stderr)
        return 2
    return render_docs.main(["--root", ws, "--out", os.path.join(ws, "docs", "reference")] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

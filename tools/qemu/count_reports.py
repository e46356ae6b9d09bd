#!/usr/bin/env python3
"""Counts the results of the QEMU guest runs (tools/qemu/ci.sh):

    count_reports.py NAME=REPORT.xml|NAME=- ...

Each argument is one guest run: NAME (e.g. aarch64-bookworm) and the JUnit report that
run.sh cut out of its console, or "-" when the run gave none (QEMU failed, the guest never
reported, a package was missing), which counts as one failure. Each <testcase> counts as in
tools/count_results.py (the same function reads it). Prints failed and skipped names, one line
per run, and as the last line `qemu: N passed, M failed`. Exit status 0 when something passed
and nothing failed.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from count_results import Counts, count_xml  # noqa: E402


def main(argv):
    counts = Counts()
    for arg in argv:
        name, _, report = arg.partition("=")
        before = (counts.passed, counts.failed)
        got = None if report in ("", "-") else count_xml(report, f"qemu {name}", counts)
        if got is None:
            counts.fail(f"qemu {name}: no test report")
        elif got[0] == 0:
            counts.fail(f"qemu {name}: the report holds no test case")
        print(f"qemu {name}: {counts.passed - before[0]} passed, "
              f"{counts.failed - before[1]} failed")
    for name in counts.failed_names:
        print(f"FAILED: {name}")
    for name in counts.skipped_names:
        print(f"SKIPPED: {name}")
    print(f"qemu: {counts.passed} passed, {counts.failed} failed")
    return 0 if counts.failed == 0 and counts.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

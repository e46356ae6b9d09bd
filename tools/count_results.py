#!/usr/bin/env python3
"""Counts test results from Bazel's per-test JUnit XML files (test.xml).

Each <testcase> element is one result: it failed if it contains <failure> or
<error>, was skipped if it contains <skipped>, and passed otherwise. Catch2
tests (see //third_party/catch2:catch2_main) write one <testcase> per test
case / leaf section; for other tests, or a test that crashed before writing
its report, Bazel generates test.xml itself with a single <testcase> that
holds an <error> when the test failed.

Which test.xml files are counted:
  * with --bep FILE (Bazel's --build_event_json_file output, written by
    tools/test.sh): exactly the tests of that `bazel test` invocation, so
    stale results of deleted/renamed targets in bazel-testlogs are ignored.
    Bazel's own verdict is cross-checked: a test that Bazel reports as
    failed/timed out but whose XML shows no failure (e.g. killed while
    writing the report, or a sanitizer error at exit) counts as one failure,
    and a test target that failed to build counts as one failure.
    If that file is missing/empty (bazel died early) nothing is counted.
  * otherwise (no --bep): every bazel-testlogs/**/test.xml.

With --ctest BUILD_DIR (the CMake build of tools/cmake_test.sh), the ctest run is counted
too, in the same totals:
  * each ctest test listed in BUILD_DIR/ctest-junit.xml (ctest --output-junit) whose Catch2
    report BUILD_DIR/test-results/<test>.xml exists counts its <testcase>s, like Bazel's;
  * ctest's verdict is cross-checked the same way: a test ctest reports as failed or not run
    whose report shows no failure counts as one failure;
  * a ctest test without a Catch2 report (a script, or a test that never ran) counts as one
    result, passed or failed as ctest says;
  * a missing or unreadable ctest-junit.xml (configure failed, ctest never ran) counts as one
    failure: CMake was asked for and gave no result.
Names of ctest results start with "ctest: ".

Prints failed/skipped test names, a per-build subtotal when both builds are counted, then, as
the LAST line, `N passed, M failed`.
Exit status: 0 if at least one test ran and none failed, 1 otherwise.
"""

import argparse
import glob
import json
import os
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET


class Counts:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failed_names = []
        self.skipped_names = []

    def fail(self, name):
        self.failed += 1
        self.failed_names.append(name)


def count_xml(path, owner, counts):
    """Adds the <testcase> results of one test.xml.

    Returns (testcases_found, failures_found), or None if unreadable.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        print(f"warning: cannot parse {path}: {e}", file=sys.stderr)
        return None
    found = failures = 0
    for tc in root.iter("testcase"):
        found += 1
        name = tc.get("name", "?")
        classname = tc.get("classname")
        full = f"{owner}: {name}" if owner else (f"{classname}.{name}" if classname else name)
        if tc.find("failure") is not None or tc.find("error") is not None:
            failures += 1
            counts.fail(full)
        elif tc.find("skipped") is not None:
            counts.skipped += 1
            counts.skipped_names.append(full)
        else:
            counts.passed += 1
    return found, failures


def uri_to_path(uri):
    if uri.startswith("file://"):
        return urllib.request.url2pathname(urllib.parse.urlparse(uri).path)
    return uri


def from_bep(bep_path, counts):
    """Counts the tests of one invocation described by a BEP JSON file."""
    results = {}  # (label, config, run, shard) -> (attempt, status, xml)
    test_targets = set()
    completed = {}  # label -> success
    with open(bep_path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue  # truncated last line if Bazel was killed
            eid = ev.get("id", {})
            if "targetConfigured" in eid:
                conf = ev.get("configured", {})
                if "testSize" in conf or conf.get("targetKind", "").endswith("_test rule"):
                    test_targets.add(eid["targetConfigured"]["label"])
            elif "targetCompleted" in eid:
                label = eid["targetCompleted"]["label"]
                ok = ev.get("completed", {}).get("success", False)
                completed[label] = completed.get(label, True) and ok
            elif "testResult" in eid:
                tid = eid["testResult"]
                res = ev.get("testResult", {})
                key = (tid["label"], tid.get("configuration", {}).get("id", ""),
                       tid.get("run", 1), tid.get("shard", 1))
                attempt = tid.get("attempt", 1)
                xml = None
                for out in res.get("testActionOutput", []):
                    if out.get("name") == "test.xml":
                        xml = uri_to_path(out.get("uri", ""))
                if key not in results or attempt >= results[key][0]:
                    results[key] = (attempt, res.get("status", "NO_STATUS"), xml)

    for (label, _conf, run, shard), (_att, status, xml) in sorted(results.items()):
        owner = label
        if shard > 1 or run > 1 or any(k[0] == label and (k[3] > 1 or k[2] > 1) for k in results):
            owner = f"{label} (run {run}, shard {shard})"
        bazel_ok = status in ("PASSED", "FLAKY")
        got = count_xml(xml, owner, counts) if xml and os.path.exists(xml) else None
        if got is None:
            if bazel_ok:
                print(f"warning: {owner}: no usable test.xml; counting as 1 passed",
                      file=sys.stderr)
                counts.passed += 1
            else:
                counts.fail(f"{owner}: {status} (no usable test.xml)")
        elif not bazel_ok and got[1] == 0:
            counts.fail(f"{owner}: {status} (reported by Bazel)")

    ran = {k[0] for k in results}
    for label in sorted(test_targets - ran):
        if completed.get(label) is False:
            counts.fail(f"{label}: FAILED_TO_BUILD")
        elif label not in completed:
            counts.fail(f"{label}: NOT_RUN (build interrupted)")


def from_testlogs(testlogs, counts):
    files = sorted(glob.glob(os.path.join(testlogs, "**", "test.xml"), recursive=True))
    for path in files:
        rel = os.path.relpath(os.path.dirname(path), testlogs)
        got = count_xml(path, "//" + rel.replace(os.sep, "/"), counts)
        if got is None:
            counts.fail(f"{rel}: unreadable test.xml")


def from_ctest(build_dir, counts):
    """Counts one ctest run of the CMake build (see the module docstring)."""
    junit = os.path.join(build_dir, "ctest-junit.xml")
    try:
        root = ET.parse(junit).getroot()
    except (ET.ParseError, OSError) as e:
        counts.fail(f"ctest: no usable {junit} ({e.__class__.__name__}): CMake configure, "
                    "build or ctest did not complete")
        return
    results = os.path.join(build_dir, "test-results")
    for tc in root.iter("testcase"):
        name = tc.get("name", "?")
        owner = f"ctest: {name}"
        status = tc.get("status", "")
        ctest_failed = (tc.find("failure") is not None or tc.find("error") is not None
                        or status in ("fail", "notrun", "disabled"))
        ctest_skipped = tc.find("skipped") is not None and not ctest_failed
        report = os.path.join(results, name + ".xml")
        got = count_xml(report, owner, counts) if os.path.exists(report) else None
        if got is None or got[0] == 0:
            if ctest_failed:
                counts.fail(f"{owner}: {status or 'failed'} (ctest)")
            elif ctest_skipped:
                counts.skipped += 1
                counts.skipped_names.append(owner)
            else:
                counts.passed += 1
        elif ctest_failed and got[1] == 0:
            counts.fail(f"{owner}: {status or 'failed'} (reported by ctest)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--testlogs", default="bazel-testlogs",
                    help="bazel-testlogs directory (default: %(default)s)")
    ap.add_argument("--bep", help="Bazel --build_event_json_file of the test run")
    ap.add_argument("--ctest", metavar="BUILD_DIR",
                    help="also count the ctest run of this CMake build directory")
    args = ap.parse_args()

    counts = Counts()
    if args.bep:
        if os.path.isfile(args.bep) and os.path.getsize(args.bep) > 0:
            from_bep(args.bep, counts)
        else:  # bazel died early; don't count stale bazel-testlogs results
            print(f"warning: build event file {args.bep} missing or empty", file=sys.stderr)
    elif os.path.isdir(args.testlogs):
        from_testlogs(args.testlogs, counts)
    else:
        print(f"warning: no {args.testlogs} directory and no build event file",
              file=sys.stderr)

    if args.ctest is not None:
        bazel_passed, bazel_failed = counts.passed, counts.failed
        from_ctest(args.ctest, counts)
        print(f"bazel: {bazel_passed} passed, {bazel_failed} failed; "
              f"ctest: {counts.passed - bazel_passed} passed, {counts.failed - bazel_failed} failed")

    for name in counts.failed_names:
        print(f"FAILED: {name}")
    for name in counts.skipped_names:
        print(f"SKIPPED: {name}")
    if counts.skipped:
        print(f"({counts.skipped} skipped)")
    sys.stdout.flush()
    print(f"{counts.passed} passed, {counts.failed} failed")
    return 0 if counts.failed == 0 and counts.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

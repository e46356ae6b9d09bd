#!/usr/bin/env python3
"""The upgrade notes (docs/upgrading/): what changes in the bindings from Linux 6.1 (the installed
bookworm headers) to generated/ (the newest headers), per arch, rendered with Jinja2 from
`kvmgen diff --json`.

    bazel run //tools/upgrade_notes:update     rewrites docs/upgrading/ in the workspace
    bazel test //tools/upgrade_notes:test      fails when docs/upgrading/ is stale

Each run regenerates the 6.1 models with kvmgen into a scratch directory (kvmgen's default
include dirs are the installed headers), then diffs them against generated/<arch>/kvm_api.json.
LoongArch has no 6.1 model (its KVM arrived in 6.7): its page says so.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import jinja2

HERE = os.path.dirname(os.path.abspath(__file__))
OLD_SERIES_ARCHES = ["x86_64", "aarch64", "riscv64", "s390x", "powerpc64le"]


def diff_json(kvmgen, old_dir, new_dir):
    r = subprocess.run([kvmgen, "diff", "--json", old_dir, new_dir], capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit("upgrade_notes: kvmgen diff failed: " + r.stderr)
    return json.loads(r.stdout)


def generate_old(kvmgen, rules, templates, out):
    cmd = [kvmgen, "generate", "--quiet", "--rules", rules, "--templates", templates, "--out", out]
    for arch in OLD_SERIES_ARCHES:
        cmd += ["--arch", arch]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("upgrade_notes: kvmgen generate (6.1) failed: " + r.stdout + r.stderr)


def view(diff):
    """The diff's items, grouped for the page: breaking ones first, each group by area."""
    groups = {}
    for item in diff["items"]:
        key = "breaking" if item["breaking"] else "compatible"
        groups.setdefault(key, {}).setdefault(item["area"], []).append(item)
    return {
        "old": diff["old"],
        "new": diff["new"],
        "changes": diff["changes"],
        "breaking": diff["breaking"],
        "groups": groups,
        "hints": diff.get("hints", []),
    }


def render(root, kvmgen):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    pages = {}
    arches = sorted(os.listdir(os.path.join(root, "generated")))
    views = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_old(kvmgen, os.path.join(root, "generator"), os.path.join(root, "templates"), tmp)
        for arch in arches:
            new_dir = os.path.join(root, "generated", arch)
            if arch not in OLD_SERIES_ARCHES:
                v = {"arch": arch, "missing": True,
                     "new": json.load(open(os.path.join(new_dir, "kvm_api.json")))}
            else:
                v = view(diff_json(kvmgen, os.path.join(tmp, arch), new_dir))
                v["arch"] = arch
                v["missing"] = False
            views.append(v)
            pages[arch + ".md"] = env.get_template("arch.md.j2").render(a=v)
    pages["README.md"] = env.get_template("index.md.j2").render(arches=views)
    return pages


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="the source tree (generated/, generator/)")
    ap.add_argument("--kvmgen", required=True)
    ap.add_argument("--out", help="write the pages here")
    ap.add_argument("--check", help="compare with the pages in this directory; exit 1 if stale")
    args = ap.parse_args(argv)
    pages = render(os.path.abspath(args.root), os.path.abspath(args.kvmgen))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for name in os.listdir(args.out):
            if name.endswith(".md") and name not in pages:
                os.remove(os.path.join(args.out, name))
        for name, text in pages.items():
            with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
                f.write(text)
        print("upgrade_notes: wrote %d pages to %s" % (len(pages), args.out))
    if args.check:
        stale = []
        for name, text in pages.items():
            path = os.path.join(args.check, name)
            if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
                stale.append(name)
        extra = [n for n in os.listdir(args.check) if n.endswith(".md") and n not in pages]
        if stale or extra:
            print("upgrade_notes: docs/upgrading/ is stale (%s); run "
                  "`bazel run //tools/upgrade_notes:update`" % ", ".join(stale + extra))
            return 1
        print("upgrade_notes: docs/upgrading/ is current (%d pages)" % len(pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())

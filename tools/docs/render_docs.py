#!/usr/bin/env python3
"""Renders the KVM reference manual (docs/reference/) from the JSON models with Jinja2.

    render_docs.py [--root DIR] --out DIR      write the manual (removing stale pages)
    render_docs.py [--root DIR] --check DIR    compare with DIR; print what is stale; exit 1

For every arch that has a model (DIR/generated/<arch>/kvm_api.json, globbed), the manual has
every ioctl (scope, direction, request number, argument type, gating capability, the runtime
method that wraps it or the typed call to use), every constant family and constant, every
struct with its layout, and the runtime API of that arch with its doc comments. Which method
wraps which ioctl is derived from runtime/kvm/*.cc with libclang (runtime_scan.py).

Each step prints one line with its duration. The output is deterministic: no timestamps, no
absolute paths.

Usually run through Bazel: `bazel run //tools/docs:update` rewrites docs/reference/ in the
workspace; `bazel test //tools/docs:docs_test` fails when it is stale.
"""

import os
import re
import sys


def _use_debian_python():
    """Jinja2 and the libclang bindings are Debian packages (python3-jinja2,
    python3-clang-14) of the system interpreter. When started by another python3 (a pyenv
    shim first in PATH, say), re-run under /usr/bin/python3 so the output does not depend on
    which one PATH finds."""
    system = "/usr/bin/python3"
    if os.environ.get("KVM_DOCS_REEXEC") or not os.path.exists(system):
        return
    try:
        if os.path.samefile(sys.executable, system):
            return
    except OSError:
        pass
    os.environ["KVM_DOCS_REEXEC"] = "1"
    os.execv(system, [system] + sys.argv)


_use_debian_python()

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import difflib  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import jinja2  # noqa: E402

import runtime_scan  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "templates")

DIRECTION = {
    "None": ("_IO", "none"),
    "Read": ("_IOR", "read (kernel writes the argument)"),
    "Write": ("_IOW", "write (kernel reads the argument)"),
    "ReadWrite": ("_IOWR", "read/write"),
}
HANDLE = {"system": "sys", "vm": "vm", "vcpu": "vcpu", "device": "dev"}
CLASS_OF_SCOPE = {"system": "kvm::System", "vm": "kvm::Vm", "vcpu": "kvm::Vcpu", "device": "kvm::Device"}
SCOPE_OF_CLASS = {cls.split("::")[1]: scope for scope, cls in CLASS_OF_SCOPE.items()}  # "Vm": "vm"


class Progress:
    def __init__(self, total):
        self.total = total
        self.n = 0
        self.start = time.monotonic()

    def step(self, what, t0):
        self.n += 1
        print("docs: [%d/%d] %s (%.1f s)" % (self.n, self.total, what, time.monotonic() - t0), flush=True)


def anchor(text):
    """An id usable in an <a id> and a #link."""
    # Template arguments in a name (a specialization's constructor) are dropped.
    return re.sub(r"<[^>]*>", "", text).replace("::", "-").replace("(", "").replace(")", "")


def cell(text):
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def type_text(field):
    t = field.get("type") or ""
    if field.get("record"):
        t = field["record"].get("kind", "struct") + " {…}"
    dims = field.get("dims") or []
    if field.get("flexible"):
        t += "[]" + "".join("[%d]" % d for d in dims[1:])
    else:
        t += "".join("[%d]" % d for d in dims)
    if field.get("bit_width") is not None:
        t += " : %d" % field["bit_width"]
    return t


def flatten(fields, base_bits=0, prefix="", depth=0):
    """Struct layout rows, nested anonymous/inline records indented below their member."""
    rows = []
    for f in fields:
        off = base_bits + (f.get("offset_bits") or 0)
        name = f.get("name") or "(anonymous)"
        path = prefix + name
        offset = "%d" % (off // 8)
        if off % 8 or f.get("bit_width") is not None:
            offset += " (bit %d)" % (off % 8)
        notes = []
        if f.get("flexible"):
            notes.append("flexible array")
        if f.get("omitted"):
            notes.append("not in the C++ struct")
        if f.get("note"):
            notes.append(f["note"])
        rows.append({
            "path": path,
            "depth": depth,
            "type": type_text(f),
            "offset": offset,
            "size": f.get("size", 0),
            "notes": "; ".join(notes),
        })
        rec = f.get("record")
        if rec:
            child_prefix = (path + ".") if f.get("name") else prefix
            rows += flatten(rec.get("fields", []), off, child_prefix, depth + 1)
    return rows


def ioctl_view(i, wrappers):
    macro, dir_text = DIRECTION.get(i.get("direction", ""), (i.get("direction", ""), i.get("direction", "")))
    scopes = i.get("scopes") or []
    arg_type = i.get("arg_type") or "void"
    has_arg = arg_type != "void"
    handle = HANDLE.get(scopes[0], "fd") if scopes else "fd"
    if not i.get("available", True) or i.get("deprecated", False):
        call = None  # the typed call rejects these at compile time
    elif has_arg:
        call = "kvm::abi::%s arg{};  %s.ioctl<kvm::abi::ioctl::%s>(arg);" % (arg_type, handle, i["cpp_name"])
    else:
        call = "%s.ioctl<kvm::abi::ioctl::%s>();" % (handle, i["cpp_name"])
    req = i.get("request")
    return {
        "name": i["name"],
        "cpp_name": i["cpp_name"],
        "available": i.get("available", True),
        "deprecated": i.get("deprecated", False),
        "unavailable_reason": i.get("unavailable_reason") or "",
        "request": ("0x%08X" % req) if req is not None else "—",
        "nr": i.get("nr"),
        "macro": macro,
        "direction": dir_text,
        "arg_c_type": i.get("arg_c_type") or "",
        "arg_type": arg_type,
        "arg_size": i.get("arg_size", 0),
        "scopes": scopes,
        "scope_source": i.get("scope_source") or "",
        "capability": i.get("capability"),
        "capability_by_scope": sorted((i.get("capability_by_scope") or {}).items()),
        "file": i.get("file", ""),
        "line": i.get("line", 0),
        "wrappers": [{"name": w.qualname + "()", "anchor": anchor(w.qualname)} for w in wrappers.get(i["name"], [])],
        "call": call,
        "handles": ", ".join("`%s`" % CLASS_OF_SCOPE.get(s, s) for s in scopes),
    }


def family_view(f):
    flags = f.get("kind") == "flags"
    members = []
    for m in f.get("members", []):
        v = m.get("value")
        if isinstance(v, int):
            value = ("0x%X" % v) if flags else ("%d" % v)
            if flags and v >= 10:
                value += " (%d)" % v
            elif not flags and (v >= 256 or v < 0):
                value += " (0x%X)" % (v & 0xFFFFFFFFFFFFFFFF)
        else:
            value = str(v)
        members.append({"name": m["name"], "cpp_name": m.get("cpp_name", ""), "value": value,
                        "file": m.get("file", ""), "line": m.get("line", 0)})
    return {"name": f["name"], "kind": f.get("kind", ""), "underlying": f.get("underlying", ""),
            "rule": f.get("rule", ""), "members": members}


def record_view(r):
    return {
        "name": r["name"],
        "kind": r.get("kind", "struct"),
        "size": r.get("size", 0),
        "align": r.get("align", 0),
        "packed": r.get("packed", False),
        "empty_in_c": r.get("empty_in_c", False),
        "note": r.get("note") or "",
        "file": r.get("file", ""),
        "line": r.get("line", 0),
        "rows": flatten(r.get("fields", [])),
    }


def gating_cap(ioctl, scope):
    """The capability gating `ioctl` (a kvm_api.json entry) on an fd of kind `scope`."""
    by_scope = ioctl.get("capability_by_scope") or {}
    if scope is None or not by_scope:
        return ioctl.get("capability")
    return by_scope.get(scope)


def runtime_view(api, ioctls):
    """`ioctls`: ioctl name -> its kvm_api.json entry, for the capability on each fd kind."""
    def issued(names, scope=None):
        return [{"name": n, "cap": gating_cap(ioctls[n], scope) if n in ioctls else None}
                for n in sorted(names)]

    classes = []
    anchors = set()  # overloads share a name: one anchor each
    for c in api.classes:
        groups = []
        # Every public method, as the header declares it (the manual is the whole API).
        for m in c.methods:
            if groups and groups[-1]["comment"] == m.comment and groups[-1]["line_end"] + 1 >= m.line:
                g = groups[-1]
            else:
                g = {"comment": m.comment, "methods": [], "line_end": m.line}
                groups.append(g)
            a = anchor(m.qualname)
            g["methods"].append({"signature": m.signature, "qualname": m.qualname,
                                 "anchor": None if a in anchors else a,
                                 "issues": issued(m.issues, SCOPE_OF_CLASS.get(c.name))})
            anchors.add(a)
            g["line_end"] = m.line + m.signature.count(";")
        classes.append({"name": "kvm::" + c.name, "anchor": anchor("kvm::" + c.name),
                        "header": c.header, "line": c.line, "comment": c.comment, "groups": groups,
                        "members": [m.text for m in c.members]})
    functions = [{"signature": f.signature, "qualname": f.qualname, "anchor": anchor(f.qualname),
                  "header": f.header, "line": f.line, "comment": f.comment, "issues": issued(f.issues)}
                 for f in api.functions]
    # Enums, type aliases and constants, one block per header, in header order.
    declarations = []
    for sn in api.snippets:
        if not declarations or declarations[-1]["header"] != sn.header:
            declarations.append({"header": sn.header, "names": [], "texts": []})
        declarations[-1]["names"].append(sn.name)
        declarations[-1]["texts"].append(sn.text)
    mismatches = [{"qualname": f.qualname, "header": f.header, "line": f.line, "why": why}
                  for f, why in api.mismatches]
    return {"classes": classes, "functions": functions, "declarations": declarations,
            "mismatches": mismatches, "files": api.files, "diagnostics": api.diagnostics}


def build_arch(model, api):
    ioctls = [ioctl_view(i, api.wrappers) for i in model.get("ioctls", [])]
    callable_ = [i for i in ioctls if i["available"] and not i["deprecated"]]
    wrapped = [i for i in callable_ if i["wrappers"]]
    return {
        "arch": model["arch"],
        "triple": model.get("triple", ""),
        "linux_version": model.get("linux_version", ""),
        "header": model.get("header", "linux/kvm.h"),
        "generated_by": model.get("generated_by", "kvmgen"),
        "notes": model.get("notes", []),
        "ioctls": ioctls,
        "families": [family_view(f) for f in model.get("families", [])],
        "constants": [{"name": c["name"], "cpp_name": c.get("cpp_name", ""), "value": c.get("value"),
                       "file": c.get("file", ""), "line": c.get("line", 0)} for c in model.get("constants", [])],
        "records": [record_view(r) for r in model.get("records", [])],
        "runtime": runtime_view(api, {i["name"]: i for i in model.get("ioctls", [])}),
        "counts": {
            "ioctls": len(ioctls),
            "callable": len(callable_),
            "unavailable": sum(1 for i in ioctls if not i["available"]),
            "deprecated": sum(1 for i in ioctls if i["deprecated"]),
            "wrapped": len(wrapped),
            "families": len(model.get("families", [])),
            "family_members": sum(len(f.get("members", [])) for f in model.get("families", [])),
            "constants": len(model.get("constants", [])),
            "records": len(model.get("records", [])),
        },
    }


def environment():
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["cell"] = cell
    env.filters["anchor"] = anchor
    return env


def render(root, arches=None, progress=True):
    """Returns {relative path: text} for the whole manual."""
    models = sorted(glob.glob(os.path.join(root, "generated", "*", "kvm_api.json")))
    if arches:
        models = [m for m in models if os.path.basename(os.path.dirname(m)) in arches]
    if not models:
        raise SystemExit("docs: no generated/<arch>/kvm_api.json under %s" % root)
    p = Progress(total=1 + len(models) + 1)
    t0 = time.monotonic()
    loaded = []
    for path in models:
        with open(path, encoding="utf-8") as f:
            loaded.append(json.load(f))
    p.step("read %d models: %s" % (len(loaded), ", ".join(m["arch"] for m in loaded)), t0)

    # One libclang scan per arch, in parallel (each parses every runtime source).
    views = {}
    workers = max(1, min(len(loaded), os.cpu_count() or 1))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        t0 = time.monotonic()
        futures = {pool.submit(_scan, model, root): model for model in loaded}
        for fut in concurrent.futures.as_completed(futures):
            model = futures[fut]
            api = fut.result()
            view = build_arch(model, api)
            views[model["arch"]] = view
            c = view["counts"]
            p.step("%s: scanned %d runtime sources with libclang: %d of %d callable ioctls have a "
                   "runtime method" % (model["arch"], len(api.files), c["wrapped"], c["callable"]), t0)
            _report(model, api)
    views = [views[m["arch"]] for m in loaded]

    t0 = time.monotonic()
    env = environment()
    out = {"README.md": env.get_template("index.md.j2").render(arches=views)}
    for v in views:
        for page in ("README", "ioctls", "constants", "structs", "runtime"):
            out["%s/%s.md" % (v["arch"], page)] = env.get_template(page + ".md.j2").render(a=v)
    p.step("rendered %d pages with Jinja2" % len(out), t0)
    return out


# The arches the runtime (runtime/kvm/) is written for. The others have bindings only: their
# pages list no runtime methods, and their ioctls are used through the typed call.
RUNTIME_ARCHES = {"x86_64", "aarch64", "riscv64"}


def _scan(model, root):
    if model["arch"] not in RUNTIME_ARCHES:
        return runtime_scan.RuntimeApi(arch=model["arch"], classes=[], functions=[], snippets=[], wrappers={},
                                       mismatches=[], diagnostics=[], files=[])
    names = {i["cpp_name"]: i["name"] for i in model.get("ioctls", [])}
    return runtime_scan.scan(model["arch"], model.get("triple") or model["arch"] + "-linux-gnu", root,
                             ioctl_names=names)


def _report(model, api):
    for d in api.diagnostics:
        print("docs: warning: %s: compiling the runtime: %s" % (model["arch"], d), file=sys.stderr)
    for f, why in api.mismatches:
        print("docs: note: %s: %s:%d: %s %s" % (model["arch"], f.header, f.line, f.qualname, why),
                  file=sys.stderr)


def existing(dirpath):
    found = {}
    for dp, _dn, fn in os.walk(dirpath):
        for name in fn:
            if name.endswith(".md"):
                full = os.path.join(dp, name)
                found[os.path.relpath(full, dirpath).replace(os.sep, "/")] = full
    return found


def write(pages, outdir):
    t0 = time.monotonic()
    os.makedirs(outdir, exist_ok=True)
    changed = removed = 0
    for rel, text in sorted(pages.items()):
        path = os.path.join(outdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        old = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                old = f.read()
        if old != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            changed += 1
    for rel, full in sorted(existing(outdir).items()):
        if rel not in pages:
            os.remove(full)
            removed += 1
    for dp, dn, fn in sorted(os.walk(outdir, topdown=False)):
        if dp != outdir and not os.listdir(dp):
            os.rmdir(dp)
    print("docs: wrote %s: %d pages, %d changed, %d removed (%.1f s)"
          % (outdir, len(pages), changed, removed, time.monotonic() - t0), flush=True)


def check(pages, outdir, max_diff_lines=60):
    """Prints what differs between `pages` and the manual in `outdir`; returns 0 if fresh."""
    have = existing(outdir) if os.path.isdir(outdir) else {}
    problems = 0
    for rel, text in sorted(pages.items()):
        if rel not in have:
            print("missing: %s" % os.path.join(outdir, rel))
            problems += 1
            continue
        with open(have[rel], encoding="utf-8") as f:
            old = f.read()
        if old != text:
            problems += 1
            print("stale: %s" % os.path.join(outdir, rel))
            diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(), "checked in", "fresh",
                                             lineterm="", n=1))
            for line in diff[:max_diff_lines]:
                print(line)
            if len(diff) > max_diff_lines:
                print("... (%d more diff lines)" % (len(diff) - max_diff_lines))
    for rel in sorted(set(have) - set(pages)):
        print("not produced by the renderer: %s" % os.path.join(outdir, rel))
        problems += 1
    if problems:
        print("docs: %d page(s) stale; run: bazel run //tools/docs:update" % problems)
    else:
        print("docs: %s is fresh (%d pages)" % (outdir, len(pages)))
    return 1 if problems else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="directory holding generated/ and runtime/ (default: .)")
    ap.add_argument("--arch", action="append", help="only this arch (repeatable; default: all models)")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", help="write the manual into this directory")
    mode.add_argument("--check", help="compare with the manual in this directory")
    args = ap.parse_args(argv)
    pages = render(os.path.abspath(args.root), args.arch)
    if args.out:
        write(pages, args.out)
        return 0
    return check(pages, args.check)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Tests of the reference manual: the checked-in docs/reference/ is what the renderer makes
today from generated/*/kvm_api.json and runtime/ (like generated/'s freshness test), it covers
every arch and every item of every model, its ioctl -> runtime method mapping agrees with the
runtime sources, and the scanner and renderer behave on a small fixture.

Run by Bazel (data: //tools/docs:reference, //docs:reference, //:generated_files, the runtime
sources). Writes one JUnit <testcase> per test to $XML_OUTPUT_FILE.
"""

import os
import sys

import render_docs  # re-runs this test under /usr/bin/python3 if needed (Debian's jinja2, clang)

import glob  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from contextlib import redirect_stdout  # noqa: E402

import runtime_scan  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "testdata", "root")
CHECKED_IN = "docs/reference"  # runfiles paths, relative to the workspace root
RENDERED = "tools/docs/reference"
PAGES = ("README.md", "ioctls.md", "constants.md", "structs.md", "runtime.md")


def models():
    return sorted(glob.glob("generated/*/kvm_api.json"))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def section(text, anchor_id):
    """The text of one `<a id="X"></a>` section, up to the next anchor heading."""
    start = text.find('<a id="%s"></a>\n## ' % anchor_id)
    if start < 0:
        return None
    end = text.find('\n<a id="', start + 1)
    return text[start:] if end < 0 else text[start:end]


class CheckedInManual(unittest.TestCase):
    def test_checked_in_manual_is_fresh(self):
        """docs/reference equals what //tools/docs:reference renders now."""
        self.assertTrue(os.path.isdir(RENDERED), "no rendered manual in runfiles")
        out = io.StringIO()
        with redirect_stdout(out):
            status = render_docs.check(
                {os.path.relpath(p, RENDERED): read(p) for p in glob.glob(RENDERED + "/**/*.md", recursive=True)},
                CHECKED_IN)
        self.assertEqual(status, 0, "\n" + out.getvalue() + "\nrun: bazel run //tools/docs:update")

    def test_every_arch_has_every_page(self):
        arches = [os.path.basename(os.path.dirname(m)) for m in models()]
        self.assertTrue(arches)
        index = read(os.path.join(CHECKED_IN, "README.md"))
        for arch in arches:
            self.assertIn("[%s](%s/README.md)" % (arch, arch), index)
            for page in PAGES:
                self.assertTrue(os.path.exists(os.path.join(CHECKED_IN, arch, page)), arch + "/" + page)
        on_disk = sorted(d for d in os.listdir(CHECKED_IN) if os.path.isdir(os.path.join(CHECKED_IN, d)))
        self.assertEqual(on_disk, sorted(arches), "docs/reference has arches without a model, or lacks some")

    def test_every_ioctl_with_scope_direction_request_argument_capability_runtime(self):
        for path in models():
            model = json.load(open(path, encoding="utf-8"))
            arch = model["arch"]
            text = read(os.path.join(CHECKED_IN, arch, "ioctls.md"))
            for i in model["ioctls"]:
                s = section(text, i["name"])
                self.assertIsNotNone(s, "%s: %s has no entry" % (arch, i["name"]))
                self.assertIn("`kvm::abi::ioctl::%s`" % i["cpp_name"], s)
                self.assertIn("- scope: " + ", ".join(i["scopes"]), s)
                self.assertIn("- direction: `_IO", s)
                if i["request"] is not None:
                    self.assertIn("0x%08X" % i["request"], s, "%s: %s" % (arch, i["name"]))
                if i["arg_c_type"]:
                    self.assertIn(i["arg_c_type"], s)
                for cap in list((i.get("capability_by_scope") or {}).values()) + [i["capability"]]:
                    if cap:
                        self.assertIn("[%s](constants.md#%s)" % (cap, cap), s)
                self.assertRegex(s, r"\n- runtime: ", "%s: %s names no runtime method or call" % (arch, i["name"]))
                if not i["available"]:
                    self.assertIn("Unavailable on %s" % arch, s)

    def test_every_constant_family_member_and_constant(self):
        for path in models():
            model = json.load(open(path, encoding="utf-8"))
            text = read(os.path.join(CHECKED_IN, model["arch"], "constants.md"))
            for f in model["families"]:
                self.assertIn('<a id="family-%s"></a>' % f["name"], text)
                for m in f["members"]:
                    self.assertIn('<a id="%s"></a>`%s` | `%s` |' % (m["name"], m["name"], m["cpp_name"]), text)
            for c in model["constants"]:
                self.assertIn('<a id="%s"></a>`%s`' % (c["name"], c["name"]), text)

    def test_every_struct_with_its_layout(self):
        for path in models():
            model = json.load(open(path, encoding="utf-8"))
            text = read(os.path.join(CHECKED_IN, model["arch"], "structs.md"))
            for r in model["records"]:
                s = section(text, r["name"])
                self.assertIsNotNone(s, "%s: struct %s" % (model["arch"], r["name"]))
                self.assertIn("%d bytes, aligned to %d" % (r["size"], r["align"]), s)
                for f in r["fields"]:
                    if f["name"]:
                        row = "`%s` | " % f["name"]
                        self.assertIn(row, s, "%s.%s" % (r["name"], f["name"]))
                        self.assertRegex(s, re.escape(row) + r"`[^`]*` \| %d" % (f["offset_bits"] // 8))

    def test_runtime_mapping_agrees_with_the_sources(self):
        """Every (method, ioctl) pair the manual states: the method is declared in its class's
        header and the runtime sources name the ioctl's descriptor, abi::ioctl::<Name>."""
        sources = {p: read(p) for p in glob.glob("runtime/kvm/*.h") + glob.glob("runtime/kvm/*.cc")}
        self.assertTrue(sources, "no runtime sources in runfiles")
        all_text = "\n".join(sources.values())
        pairs = 0
        for path in models():
            model = json.load(open(path, encoding="utf-8"))
            cpp = {i["name"]: i["cpp_name"] for i in model["ioctls"]}
            text = read(os.path.join(CHECKED_IN, model["arch"], "ioctls.md"))
            for name in cpp:
                s = section(text, name)
                for cls, method in re.findall(r"\[`kvm::(\w+)::(\w+)\(\)`\]", s.split("- runtime:", 1)[1].split("\n")[0]):
                    pairs += 1
                    decl = re.compile(r"\b%s\s*\(" % re.escape(method))
                    headers = [t for p, t in sources.items() if p.endswith(".h") and re.search(r"\bclass %s\b" % cls, t)]
                    self.assertTrue(any(decl.search(t) for t in headers), "kvm::%s::%s not declared" % (cls, method))
                    self.assertIn("abi::ioctl::%s" % cpp[name], all_text, "%s: no source names it" % name)
        self.assertGreater(pairs, 20)

    def test_runtime_page_names_the_gating_capability_of_each_issued_ioctl(self):
        """Each "issues" entry of runtime.md carries the model's capability for that ioctl,
        and only that one."""
        checked = per_fd = 0
        scope_of = {"System": "system", "Vm": "vm", "Vcpu": "vcpu", "Device": "device"}
        for path in models():
            model = json.load(open(path, encoding="utf-8"))
            ioctls = {i["name"]: i for i in model["ioctls"]}
            text = read(os.path.join(CHECKED_IN, model["arch"], "runtime.md"))
            # Each class's section: the capability on that class's kind of fd.
            for cls, body in re.findall(r"\n## kvm::(\w+)\n(.*?)(?=\n## |\Z)", text, re.S):
                scope = scope_of.get(cls)
                for name, cap in re.findall(r"\[(KVM_\w+)\]\(ioctls\.md#\1\)(?: \(needs \[(KVM_CAP_\w+)\])?", body):
                    i = ioctls[name]
                    by_scope = i.get("capability_by_scope") or {}
                    want = by_scope.get(scope) if by_scope and scope else i.get("capability")
                    self.assertEqual(cap or None, want, "%s: %s in %s" % (model["arch"], name, cls))
                    checked += 1 if cap else 0
                    per_fd += 1 if by_scope else 0
        self.assertGreater(checked, 20)
        self.assertGreater(per_fd, 3)

    def test_runtime_page_covers_the_whole_public_api(self):
        """Every class, struct and enum the runtime's headers declare at namespace scope
        outside kvm::detail (found here with a regex, independently of the libclang scan),
        with or without ioctls, has its section in runtime.md: the x86 guest helpers
        (runtime/kvm/x86/, kvm::x86) on x86_64."""
        text = read(os.path.join(CHECKED_IN, "x86_64", "runtime.md"))
        found = 0
        for path in sorted(glob.glob("runtime/kvm/*.h") + glob.glob("runtime/kvm/x86/*.h")):
            ns = "kvm::x86::" if "/x86/" in path else "kvm::"
            in_detail = False
            for line in read(path).split("\n"):
                if re.match(r"namespace (kvm::)?detail \{", line):
                    in_detail = True
                elif re.match(r"\}  // namespace (kvm::)?detail", line):
                    in_detail = False
                m = re.match(r"(?:class|struct|enum class) (\w+)\b(?!;)", line)
                if in_detail or not m or line.rstrip().endswith(";"):
                    continue
                found += 1
                name = ns + m.group(1)
                if line.startswith("enum class"):
                    self.assertRegex(text, r"\nenum class %s\b" % m.group(1), "%s (%s)" % (name, path))
                else:
                    self.assertIn("\n## %s\n" % name, text, "%s (%s) has no section" % (name, path))
        self.assertGreater(found, 30)
        # The types the manual used to leave to the headers, with members and comments.
        for name, member in [("kvm::IoExit", "std::uint16_t port() const noexcept;"),
                             ("kvm::MmioExit", "std::uint64_t phys_addr() const noexcept;"),
                             ("kvm::GuestMemory", "std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) const;"),
                             ("kvm::x86::Assembler", "std::vector<std::uint8_t> finish();"),
                             ("kvm::x86::GuestLayout", "std::uint64_t mapped_size = 4 * kGiB;")]:
            body = text.split("\n## %s\n" % name, 1)[1].split("\n## ", 1)[0]
            self.assertIn(member, body, name)

    def test_known_wrappers_on_x86_64(self):
        """A few mappings anyone can check by reading runtime/kvm/*.cc."""
        text = read(os.path.join(CHECKED_IN, "x86_64", "ioctls.md"))
        for ioctl, method in [("KVM_CREATE_VM", "kvm::System::create_vm()"),
                              ("KVM_RUN", "kvm::Vcpu::run()"),
                              ("KVM_IRQFD", "kvm::Vm::irqfd()"),
                              ("KVM_GET_DIRTY_LOG", "kvm::Vm::dirty_log()"),
                              ("KVM_SET_USER_MEMORY_REGION", "kvm::Vm::set_user_memory_region()")]:
            s = section(text, ioctl)
            self.assertIn("[`%s`]" % method, s, ioctl)


class ScannerOnFixture(unittest.TestCase):
    """runtime_scan on tools/docs/testdata/root: a runtime with every way to reach an ioctl."""

    @classmethod
    def setUpClass(cls):
        names = {"GetThing": "KVM_GET_THING", "SetThing": "KVM_SET_THING", "Run": "KVM_RUN",
                 "X86Only": "KVM_X86_ONLY", "Unwrapped": "KVM_UNWRAPPED"}
        cls.x86 = runtime_scan.scan("x86_64", "x86_64-linux-gnu", FIXTURE, ioctl_names=names)
        cls.arm = runtime_scan.scan("aarch64", "aarch64-linux-gnu", FIXTURE, ioctl_names=names)

    def wrapped(self, api, ioctl):
        return sorted(f.qualname for f in api.wrappers.get(ioctl, []))

    def test_direct_helper_private_and_request_uses(self):
        self.assertEqual(self.wrapped(self.x86, "KVM_GET_THING"), [
            "kvm::Thing::round_trip", "kvm::Thing::thing", "kvm::Thing::thing_via_helper",
            "kvm::Thing::undocumented", "kvm::Thing::wrong_comment"])
        self.assertEqual(self.wrapped(self.x86, "KVM_SET_THING"),
                         ["kvm::Thing::round_trip", "kvm::Thing::set_thing", "kvm::set_thing_on"])
        self.assertEqual(self.wrapped(self.x86, "KVM_RUN"), ["kvm::Thing::run"])

    def test_calls_between_public_methods_are_not_followed(self):
        twice = [m for c in self.x86.classes for m in c.methods if m.name == "twice"][0]
        self.assertEqual(twice.issues, set())
        self.assertNotIn("KVM_UNWRAPPED", self.x86.wrappers)

    def test_arch_conditional_methods(self):
        self.assertEqual(self.wrapped(self.x86, "KVM_X86_ONLY"), ["kvm::Thing::x86_only"])
        self.assertEqual(self.wrapped(self.arm, "KVM_X86_ONLY"), [])
        self.assertNotIn("x86_only", [m.name for c in self.arm.classes for m in c.methods])

    def test_group_comments_and_shorthand(self):
        methods = {m.name: m for c in self.x86.classes for m in c.methods}
        self.assertEqual(methods["set_thing"].comment, methods["thing"].comment)
        self.assertEqual(methods["set_thing"].comment_ioctls, {"KVM_GET_THING", "KVM_SET_THING"})
        self.assertEqual(methods["round_trip"].comment_ioctls, {"KVM_GET_THING", "KVM_SET_THING"})
        self.assertEqual(methods["fd"].signature, "int fd() const noexcept")

    def test_mismatches(self):
        found = sorted((f.name, why) for f, why in self.x86.mismatches)
        self.assertEqual(found, [
            ("undocumented", "has no doc comment, and issues KVM_GET_THING"),
            ("wrong_comment", "its comment names KVM_UNWRAPPED, which it does not issue"),
        ])


class RendererOnFixture(unittest.TestCase):
    def run_renderer(self, *args):
        p = subprocess.run([sys.executable, os.path.join(HERE, "render_docs.py")] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return p.returncode, p.stdout

    def test_render_check_and_stale_pages(self):
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        root = os.path.join(tmp, "root")
        shutil.copytree(FIXTURE, root)
        out = os.path.join(tmp, "reference")
        rc, log = self.run_renderer("--root", root, "--out", out)
        self.assertEqual(rc, 0, log)
        # One progress line per step, with its duration.
        self.assertRegex(log, r"docs: \[1/4\] read 2 models: aarch64, x86_64 \(\d+\.\d s\)")
        self.assertRegex(log, r"docs: \[\d/4\] x86_64: scanned 1 runtime sources with libclang: "
                              r"4 of 5 callable ioctls have a runtime method \(\d+\.\d s\)")
        self.assertRegex(log, r"docs: \[4/4\] rendered 11 pages with Jinja2")
        self.assertEqual(sorted(os.listdir(out)), ["README.md", "aarch64", "x86_64"])

        ioctls = read(os.path.join(out, "x86_64", "ioctls.md"))
        self.assertIn("| [KVM_GET_THING](#KVM_GET_THING) | vm | _IOR | 0x8004AE70 | `struct kvm_thing` | "
                      "[KVM_CAP_THING](constants.md#KVM_CAP_THING) |", ioctls)
        self.assertIn("- runtime: no method; typed call: `sys.ioctl<kvm::abi::ioctl::Unwrapped>();`", ioctls)
        self.assertIn("[KVM_OLD_THING](#KVM_OLD_THING) (deprecated)", ioctls)
        arm = read(os.path.join(out, "aarch64", "ioctls.md"))
        self.assertIn("**Unavailable on aarch64**: argument type 'struct kvm_x86' is not defined for aarch64.", arm)
        structs = read(os.path.join(out, "x86_64", "structs.md"))
        self.assertIn("| `bits` | `std::uint32_t : 3` | 4 (bit 3) | 4 |", structs)
        self.assertIn("| `(anonymous)` | `union {…}` | 8 | 8 |", structs)
        self.assertIn("| &nbsp;&nbsp;`bytes` | `std::uint8_t[8]` | 8 | 8 |", structs)
        self.assertIn("| `entries` | `std::uint64_t[]` | 16 | 0 | flexible array; hoisted |", structs)
        consts = read(os.path.join(out, "x86_64", "constants.md"))
        self.assertIn('| <a id="KVM_THING_B"></a>`KVM_THING_B` | `B` | 0x10 (16) |', consts)

        self.assertEqual(self.run_renderer("--root", root, "--check", out)[0], 0)
        with open(os.path.join(out, "x86_64", "structs.md"), "a", encoding="utf-8") as f:
            f.write("a hand edit\n")
        with open(os.path.join(out, "x86_64", "stray.md"), "w", encoding="utf-8") as f:
            f.write("stray\n")
        rc, log = self.run_renderer("--root", root, "--check", out)
        self.assertEqual(rc, 1)
        self.assertIn("stale: " + os.path.join(out, "x86_64", "structs.md"), log)
        self.assertIn("-a hand edit", log)
        self.assertIn("not produced by the renderer: " + os.path.join(out, "x86_64", "stray.md"), log)

        # An arch whose model is gone disappears from the manual on the next --out.
        shutil.rmtree(os.path.join(root, "generated", "aarch64"))
        rc, log = self.run_renderer("--root", root, "--out", out)
        self.assertEqual(rc, 0, log)
        self.assertEqual(sorted(os.listdir(out)), ["README.md", "x86_64"])
        self.assertNotIn("aarch64", read(os.path.join(out, "README.md")))


# ---- a unittest runner that writes JUnit XML for Bazel's test.xml -------------------------


class _Result(unittest.TextTestResult):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.cases = []
        self._t0 = {}

    def startTest(self, test):
        self._t0[test.id()] = time.monotonic()
        super().startTest(test)

    def _record(self, test, kind, detail=""):
        self.cases.append((test, kind, detail, time.monotonic() - self._t0.get(test.id(), time.monotonic())))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def _write_junit(path, result):
    suite = ET.Element("testsuite", name="docs_test", tests=str(len(result.cases)),
                       failures=str(len(result.failures)), errors=str(len(result.errors)))
    for test, kind, detail, secs in result.cases:
        cls, _, name = test.id().rpartition(".")
        tc = ET.SubElement(suite, "testcase", classname=cls, name=name, time="%.3f" % secs)
        if kind in ("failure", "error", "skipped"):
            ET.SubElement(tc, kind, message=detail.strip().split("\n")[-1][:200]).text = detail
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Result)
    result = runner.run(suite)
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        _write_junit(xml, result)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())

"""Which runtime method wraps which ioctl, read from the runtime's own source with libclang.

For one arch, every runtime/kvm/*.cc is parsed for that arch's target triple against that
arch's generated bindings (so methods inside `#if defined(__x86_64__)` exist only for x86_64).
Then:

  * the public API is everything declared in a runtime header in namespace kvm (not
    kvm::detail or kvm::abi) and, for x86_64, in kvm::x86 (runtime/kvm/x86/, the guest
    helpers): classes and structs with their public methods and their public members (fields,
    nested types, static constants), enums, type aliases, constants and free functions,
    whether or not they issue ioctls. Every header is parsed, included by a .cc or not;
  * a function *issues* ioctl X when its body names `abi::ioctl::X` (as in
    `ioctl<abi::ioctl::GetRegs>(...)`, `try_ioctl<...>`, `abi::ioctl::Run::request`), or calls
    a helper that does: helpers are functions that are not public API (kvm::detail, anonymous
    namespaces, private members), followed transitively. Calls from one public method to
    another are not followed: a method wraps what it issues itself;
  * each public method's doc comment is the comment block above its declaration, or above the
    group of declarations it belongs to (consecutive lines without a blank line);
  * KVM_* names in that comment are compared with what the body issues: the report lists
    comments naming an ioctl the method does not issue, and methods issuing an ioctl their
    comment does not name.

Nothing here is checked in: the manual shows the result, and its freshness test re-derives it
from the sources.
"""

import dataclasses
import glob
import os
import re

_LIBCLANG_CANDIDATES = [
    "/usr/lib/llvm-14/lib/libclang.so.1",
    "/usr/lib/llvm-14/lib/libclang.so",
    "/usr/lib/x86_64-linux-gnu/libclang-14.so.1",
]


def _cindex():
    import clang.cindex as ci  # Debian python3-clang-14

    if not ci.Config.loaded:
        for path in _LIBCLANG_CANDIDATES:
            if os.path.exists(path):
                ci.Config.set_library_file(path)
                break
    return ci


@dataclasses.dataclass
class Function:
    qualname: str  # kvm::Vm::irqfd
    cls: str  # Vm, or "" for a free function
    name: str
    signature: str  # as declared: "void irqfd(int eventfd, std::uint32_t gsi, int resample_fd = -1) const"
    header: str  # runtime/kvm/vm.h
    line: int
    comment: str  # the doc comment text, "" if none
    issues: set = dataclasses.field(default_factory=set)  # ioctl C names: KVM_IRQFD
    comment_ioctls: set = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class Class:
    name: str  # Vm, or x86::Assembler
    header: str
    line: int
    comment: str
    methods: list = dataclasses.field(default_factory=list)  # Function, in declaration order
    members: list = dataclasses.field(default_factory=list)  # Snippet: public fields, types, constants


@dataclasses.dataclass
class Snippet:
    """A declaration that is not a function, as written in its header with the comment above."""
    name: str  # kvm::RunStatus
    kind: str  # "enum", "alias", "constant", or for members "member"
    header: str
    line: int
    text: str  # the source lines, comment included


@dataclasses.dataclass
class RuntimeApi:
    arch: str
    classes: list  # every public Class, in header order
    functions: list  # every public free Function
    snippets: list  # enums, type aliases and constants at namespace scope (Snippet)
    wrappers: dict  # ioctl C name -> [Function]
    mismatches: list  # (Function, "comment names KVM_X, which the method does not issue")
    diagnostics: list  # compiler errors met while parsing (the scan still uses what it got)
    files: list  # the sources parsed


def _kind(c):
    try:
        return c.kind
    except ValueError:  # a cursor kind newer than the Python bindings
        return None


def _walk(c):
    yield c
    for ch in c.get_children():
        yield from _walk(ch)


def _walk_files(c, keep):
    """Like _walk, but skips subtrees declared outside the files `keep` accepts (the standard
    library and the generated bindings are large and of no interest here)."""
    for ch in c.get_children():
        f = ch.location.file
        if f is None or not keep(f.name):
            continue
        yield ch
        yield from _walk_files(ch, keep)


_SHORTHAND = re.compile(r"\bKVM_((?:[A-Z0-9]+/)+[A-Z0-9]+)_([A-Z0-9_]+)\b")


def ioctls_named(text, c_names):
    """The ioctl names in a comment, with shorthands expanded: KVM_GET/SET_SREGS names
    KVM_GET_SREGS and KVM_SET_SREGS."""
    found = {n for n in re.findall(r"\bKVM_[A-Z0-9_]+\b", text) if n in c_names}
    for m in _SHORTHAND.finditer(text):
        for alt in m.group(1).split("/"):
            name = "KVM_%s_%s" % (alt, m.group(2))
            if name in c_names:
                found.add(name)
    return found


def _scope_chain(c, ci):
    """Names of the enclosing namespaces/classes, outermost first ('' for anonymous)."""
    chain = []
    p = c.semantic_parent
    while p is not None and _kind(p) != ci.CursorKind.TRANSLATION_UNIT:
        chain.append(p.spelling)
        p = p.semantic_parent
    return list(reversed(chain))


def _rel(path, root):
    return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")


class _SourceLines:
    def __init__(self):
        self._cache = {}

    def get(self, path):
        if path not in self._cache:
            with open(path, encoding="utf-8") as f:
                self._cache[path] = f.read().split("\n")
        return self._cache[path]


def _group_comment(lines, line):
    """The // comment block above the declaration starting at 1-based `line`, or above the
    group of declarations (no blank line in between) it belongs to."""
    i = line - 2
    while i >= 0:
        s = lines[i].strip()
        if not s:
            return ""
        if s.startswith("//"):
            break
        if s.endswith(":") and s.rstrip(":").strip() in ("public", "private", "protected"):
            return ""
        if s.startswith("#"):  # #if / #endif lines end a group
            return ""
        i -= 1
    if i < 0:
        return ""
    block = []
    while i >= 0 and lines[i].strip().startswith("//"):
        block.append(lines[i].strip()[2:].strip())
        i -= 1
    return " ".join(reversed(block)).strip()


def _source_with_comment(lines, cursor):
    """The declaration's source lines, with the // comment block right above it (no blank line
    in between), dedented."""
    first = cursor.extent.start.line
    last = cursor.extent.end.line
    # A trailing comment on the last line belongs to the declaration (`int x = 0;  // why`).
    while first >= 2 and lines[first - 2].strip().startswith("//"):
        first -= 1
    block = lines[first - 1:last]
    indent = min((len(l) - len(l.lstrip()) for l in block if l.strip()), default=0)
    return "\n".join(l[indent:].rstrip() for l in block)


def _declaration_text(lines, cursor):
    """The declaration as written, from its start to the ';' or the body's '{', one line."""
    start = cursor.extent.start
    end = cursor.extent.end
    text = []
    for ln in range(start.line, end.line + 1):
        s = lines[ln - 1]
        if ln == end.line:
            s = s[: end.column - 1]
        if ln == start.line:
            s = s[start.column - 1 :]
        text.append(s)
    t = " ".join(re.sub(r"\s*//.*$", "", x).strip() for x in text)  # without // comments
    # Cut an inline body and anything after it.
    depth = 0
    for i, ch in enumerate(t):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "{" and depth == 0:
            t = t[:i]
            break
    # Cut a constructor's member initializers: the first lone ':' after the parameter list.
    depth, seen_params = 0, False
    for i, ch in enumerate(t):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            seen_params = seen_params or depth == 0
        elif ch == ":" and depth == 0 and seen_params and t[i - 1] != ":" and t[i + 1 : i + 2] != ":":
            t = t[:i]
            break
    t = re.sub(r"\s+", " ", t).strip().rstrip(";").strip()
    t = re.sub(r"\s*(override|final)\s*$", "", t)
    return t


def scan(arch, triple, root, runtime_dir="runtime", generated_dir="generated", ioctl_names=None):
    """Scans root/runtime/kvm/*.cc for `arch`. `ioctl_names` maps the C++ name of every ioctl
    of the arch's model (GetRegs) to its C name (KVM_GET_REGS)."""
    ci = _cindex()
    root = os.path.abspath(root)
    runtime_root = os.path.join(root, runtime_dir)
    sources = sorted(glob.glob(os.path.join(runtime_root, "kvm", "*.cc")))
    headers = sorted(glob.glob(os.path.join(runtime_root, "kvm", "*.h")))
    namespaces = [["kvm"]]
    if arch == "x86_64":  # the x86 guest helpers, kvm::x86
        sources += sorted(glob.glob(os.path.join(runtime_root, "kvm", "x86", "*.cc")))
        headers += sorted(glob.glob(os.path.join(runtime_root, "kvm", "x86", "*.h")))
        namespaces.append(["kvm", "x86"])
    # Every header, also those no .cc includes, through one extra translation unit.
    all_headers = os.path.join(runtime_root, "kvm", "__all_headers__.cc")
    all_headers_text = "".join('#include "%s"\n' % _rel(h, runtime_root) for h in headers)
    args = [
        "-x", "c++", "-std=c++20", "--target=" + triple, "-fparse-all-comments",
        "-I" + runtime_root, "-I" + os.path.join(root, generated_dir, arch),
    ]
    ioctl_names = ioctl_names or {}
    c_names = set(ioctl_names.values())
    index = ci.Index.create()
    lines = _SourceLines()
    diagnostics = []

    decls = {}  # qualname-with-signature key -> Function (public API, from headers)
    defaulted = set()  # keys of decls that are `= default`: they have no body to read
    bodies = {}  # function key -> (set of ioctl C names, set of callee keys)
    classes = {}  # name -> Class
    public_keys = set()

    def in_runtime(cur):
        f = cur.location.file
        return f is not None and os.path.abspath(f.name).startswith(runtime_root + os.sep)

    def func_key(cur):
        chain = _scope_chain(cur, ci)
        name = "::".join([s or "(anonymous:%s)" % _rel(cur.location.file.name, root) for s in chain] + [cur.spelling])
        return name

    function_kinds = {
        ci.CursorKind.CXX_METHOD, ci.CursorKind.FUNCTION_DECL, ci.CursorKind.FUNCTION_TEMPLATE,
        ci.CursorKind.CONSTRUCTOR, ci.CursorKind.DESTRUCTOR,
    }
    class_kinds = {ci.CursorKind.CLASS_DECL, ci.CursorKind.STRUCT_DECL, ci.CursorKind.CLASS_TEMPLATE,
                   ci.CursorKind.CLASS_TEMPLATE_PARTIAL_SPECIALIZATION}

    def ioctl_of(ref):
        """The C name if `ref` (a referenced cursor) is kvm::abi::ioctl::<X>."""
        if ref is None or _kind(ref) not in (ci.CursorKind.STRUCT_DECL, ci.CursorKind.CLASS_DECL, ci.CursorKind.TYPEDEF_DECL, ci.CursorKind.TYPE_ALIAS_DECL):
            return None
        chain = _scope_chain(ref, ci)
        if chain[-3:] != ["kvm", "abi", "ioctl"]:
            return None
        return ioctl_names.get(ref.spelling, None)

    snippets = {}  # (header, line) -> Snippet
    members = {}  # class qualname -> {(header, line): Snippet}

    def add_snippet(cur, kind, into):
        path = cur.location.file.name
        where = (_rel(path, root), cur.extent.start.line)
        if where not in into:
            chain = _scope_chain(cur, ci)
            into[where] = Snippet("::".join(chain + [cur.spelling]), kind, where[0], where[1],
                                  _source_with_comment(lines.get(path), cur))

    member_kinds = {ci.CursorKind.FIELD_DECL, ci.CursorKind.VAR_DECL, ci.CursorKind.ENUM_DECL,
                    ci.CursorKind.TYPE_ALIAS_DECL, ci.CursorKind.TYPEDEF_DECL}
    snippet_kinds = {ci.CursorKind.ENUM_DECL: "enum", ci.CursorKind.TYPE_ALIAS_DECL: "alias",
                     ci.CursorKind.TYPEDEF_DECL: "alias", ci.CursorKind.USING_DECLARATION: "alias",
                    ci.CursorKind.VAR_DECL: "constant"}

    for src in sources + [all_headers]:
        if src == all_headers:
            tu = index.parse(src, args=args, unsaved_files=[(src, all_headers_text)])
        else:
            tu = index.parse(src, args=args)
        for d in tu.diagnostics:
            if d.severity >= 3:
                loc = d.location
                where = "%s:%d" % (_rel(loc.file.name, root), loc.line) if loc.file else "?"
                diagnostics.append("%s: %s" % (where, d.spelling))
        for cur in _walk_files(tu.cursor, lambda f: os.path.abspath(f).startswith(runtime_root + os.sep)):
            k = _kind(cur)
            if k is None:
                continue
            in_header = cur.location.file.name.endswith(".h")
            chain = _scope_chain(cur, ci)
            parent = cur.semantic_parent
            parent_is_class = parent is not None and _kind(parent) in class_kinds
            if in_header and chain[:-1] in namespaces and parent_is_class and \
                    cur.access_specifier == ci.AccessSpecifier.PUBLIC and \
                    (k in member_kinds or (k in class_kinds and cur.is_definition())):
                # A public member other than a method: shown as written.
                add_snippet(cur, "member", members.setdefault("::".join(chain[1:]), {}))
                continue
            if k in class_kinds and cur.is_definition():
                if chain in namespaces and in_header:
                    name = "::".join(chain[1:] + [cur.spelling])
                    if name not in classes:
                        path = cur.location.file.name
                        classes[name] = Class(name, _rel(path, root), cur.location.line,
                                              _group_comment(lines.get(path), cur.location.line))
                continue
            if k in snippet_kinds and chain in namespaces and in_header and cur.spelling:
                add_snippet(cur, snippet_kinds[k], snippets)
                continue
            if k not in function_kinds:
                continue
            key = func_key(cur)
            path = cur.location.file.name
            is_header = path.endswith(".h")
            public = False
            if chain in namespaces and k in (ci.CursorKind.FUNCTION_DECL, ci.CursorKind.FUNCTION_TEMPLATE):
                public = True  # a free function of the API
            elif chain[:-1] in namespaces and parent_is_class:
                public = cur.access_specifier == ci.AccessSpecifier.PUBLIC
            if public:
                public_keys.add(key)
            # The declaration in the header (inside its class) carries the doc comment.
            if public and is_header and cur.semantic_parent == cur.lexical_parent:
                sig = _declaration_text(lines.get(path), cur)
                dkey = (key, cur.displayname)
                if k != ci.CursorKind.FUNCTION_DECL and cur.is_default_method():
                    defaulted.add(dkey)
                if dkey not in decls:
                    comment = _group_comment(lines.get(path), cur.extent.start.line)
                    decls[dkey] = Function(
                        qualname="::".join(chain + [cur.spelling]),
                        cls="::".join(chain[1:]) if parent_is_class else "", name=cur.spelling,
                        signature=sig,
                        header=_rel(path, root), line=cur.extent.start.line, comment=comment,
                        comment_ioctls=ioctls_named(comment, c_names),
                    )
            if cur.is_definition():
                issues, callees = bodies.setdefault((key, cur.displayname), (set(), set()))
                for d in _walk(cur):
                    dk = _kind(d)
                    if dk == ci.CursorKind.TYPE_REF:
                        name = ioctl_of(d.referenced)
                        if name:
                            issues.add(name)
                    elif dk in (ci.CursorKind.CALL_EXPR, ci.CursorKind.DECL_REF_EXPR, ci.CursorKind.MEMBER_REF_EXPR):
                        r = d.referenced
                        if r is not None and _kind(r) in function_kinds and r.location.file is not None \
                                and os.path.abspath(r.location.file.name).startswith(runtime_root + os.sep):
                            callees.add(func_key(r))

    # Issued ioctls per function name (overloads merged), helpers followed transitively.
    by_name = {}
    for (key, _disp), (issues, callees) in bodies.items():
        e = by_name.setdefault(key, (set(), set()))
        e[0].update(issues)
        e[1].update(callees)

    def closure(key, seen):
        issues, callees = by_name.get(key, (set(), set()))
        out = set(issues)
        for c in callees:
            if c in seen or c in public_keys:
                continue
            seen.add(c)
            out |= closure(c, seen)
        return out

    wrappers = {}
    mismatches = []
    for (key, disp), fn in sorted(decls.items(), key=lambda kv: (kv[1].header, kv[1].line)):
        issues, callees = bodies.get((key, disp), (set(), set()))
        # Defined elsewhere under another displayname? Use the name, unless it is defaulted:
        # then it has no body, and its overloads' bodies say nothing about it.
        if (key, disp) not in bodies and (key, disp) not in defaulted:
            issues, callees = by_name.get(key, (set(), set()))
        seen = {key}
        total = set(issues)
        for c in callees:
            if c not in public_keys and c not in seen:
                seen.add(c)
                total |= closure(c, seen)
        fn.issues = total
        for name in sorted(total):
            wrappers.setdefault(name, []).append(fn)

    # Comments document groups of declarations (`regs()` and `set_regs()` share one), so
    # compare per group: what the comment names against what the group's methods issue.
    groups = {}
    for fn in decls.values():
        if fn.issues or fn.comment_ioctls:
            groups.setdefault((fn.header, fn.comment), []).append(fn)
    for (_header, _comment), fns in sorted(groups.items(), key=lambda kv: (kv[1][0].header, kv[1][0].line)):
        fns.sort(key=lambda f: f.line)
        named = set().union(*(f.comment_ioctls for f in fns))
        issued = set().union(*(f.issues for f in fns))
        if not _comment:
            for f in fns:
                if f.issues:
                    mismatches.append((f, "has no doc comment, and issues " + ", ".join(sorted(f.issues))))
            continue
        for name in sorted(named - issued):
            if issued:
                if len(fns) == 1:
                    why = "its comment names %s, which it does not issue" % name
                else:
                    why = "its comment names %s, which none of %s issues" % (
                        name, ", ".join(f.name + "()" for f in fns))
                mismatches.append((fns[0], why))
        for f in fns:
            for name in sorted(f.issues - named):
                mismatches.append((f, "issues %s, which its comment does not name" % name))

    for fn in sorted(decls.values(), key=lambda f: (f.header, f.line)):
        if fn.cls and fn.cls in classes:
            classes[fn.cls].methods.append(fn)
    for name, found in members.items():
        if name in classes:
            classes[name].members = [found[w] for w in sorted(found)]
    api_classes = sorted(classes.values(), key=lambda c: (c.header, c.line))
    functions = [f for f in sorted(decls.values(), key=lambda f: (f.header, f.line)) if not f.cls]
    return RuntimeApi(arch=arch, classes=api_classes, functions=functions,
                      snippets=[snippets[w] for w in sorted(snippets)], wrappers=wrappers,
                      mismatches=mismatches, diagnostics=sorted(set(diagnostics)),
                      files=[_rel(s, root) for s in sources])

"""What a Bazel workspace that uses @kvm_cpp needs in its WORKSPACE, offline:

    local_repository(name = "kvm_cpp", path = "/path/to/kvm-cpp")
    load("@kvm_cpp//:deps.bzl", "kvm_cpp_dependencies")
    kvm_cpp_dependencies()

declares the repositories Bazel 4.2.3 would otherwise try to download (every one only if the
workspace has not declared it already):
  * rules_cc: this repository's shim (third_party/rules_cc), which re-exports the native
    cc_* rules (Debian's bazel-rules-cc is too new for Bazel 4.2.3);
  * rules_java: Debian's bazel-rules-java (/usr/share/bazel/rules/java);
  * remote_coverage_tools: this repository's stub (third_party/remote_coverage_tools), which
    test rules name even without `bazel coverage`.
README.md, "Use it from your Bazel workspace", shows the whole set-up;
tests/bazel_consumer/consumer_test.sh builds and runs such a workspace.
"""

load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")

def _kvm_cpp_dir_impl(ctx):
    # The directory `path` of the @kvm_cpp checkout, wherever the consumer put it: found
    # through a file of this repository, since a macro cannot turn a label into a path.
    root = ctx.path(ctx.attr._anchor).dirname
    src = root
    for part in ctx.attr.path.split("/"):
        src = src.get_child(part)
    if not src.exists:
        fail("kvm_cpp: %s does not exist" % src)
    for child in src.readdir():
        ctx.symlink(child, child.basename)

_kvm_cpp_dir = repository_rule(
    implementation = _kvm_cpp_dir_impl,
    attrs = {
        "path": attr.string(mandatory = True, doc = "a directory of @kvm_cpp, e.g. third_party/rules_cc"),
        "_anchor": attr.label(default = Label("//:deps.bzl")),
    },
    local = True,
)

def kvm_cpp_dependencies():
    """Declares rules_cc, rules_java and remote_coverage_tools for offline builds."""
    maybe(_kvm_cpp_dir, name = "rules_cc", path = "third_party/rules_cc")
    maybe(native.local_repository, name = "rules_java", path = "/usr/share/bazel/rules/java")
    maybe(
        _kvm_cpp_dir,
        name = "remote_coverage_tools",
        path = "third_party/remote_coverage_tools",
    )

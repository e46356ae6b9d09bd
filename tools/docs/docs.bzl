"""reference_docs(): renders the KVM reference manual (docs/reference/) as a directory.

    reference_docs(
        name = "reference",
        models = ["//:generated_files"],   # every generated/<arch>/kvm_api.json in there is used
        runtime = ["//:kvm"],              # cc_library targets whose srcs/hdrs are the runtime
    )

The action runs //tools/docs:render_docs in the execroot, where the models, the generated
headers and the runtime sources sit at their workspace paths; the runtime's sources are
collected from the cc_library targets with an aspect, so a file added to runtime/kvm/ is seen
without touching this rule.
"""

RuntimeSourcesInfo = provider(fields = {"files": "depset of the srcs and hdrs"})

def _runtime_sources_impl(target, ctx):
    files = []
    for attr in ("srcs", "hdrs"):
        files += getattr(ctx.rule.files, attr, [])
    return [RuntimeSourcesInfo(files = depset(files))]

runtime_sources = aspect(implementation = _runtime_sources_impl)

def _reference_docs_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    runtime = depset(transitive = [d[RuntimeSourcesInfo].files for d in ctx.attr.runtime])
    models = [f for f in ctx.files.models if f.basename == "kvm_api.json"]
    if not models:
        fail("reference_docs: no kvm_api.json among the models")
    args = ctx.actions.args()
    args.add("--root", ".")
    args.add("--out", out.path)
    ctx.actions.run(
        executable = ctx.executable._renderer,
        arguments = [args],
        inputs = depset(ctx.files.models, transitive = [runtime]),
        outputs = [out],
        mnemonic = "KvmReferenceDocs",
        progress_message = "Rendering the KVM reference manual for %d arch(es)" % len(models),
        use_default_shell_env = True,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

reference_docs = rule(
    implementation = _reference_docs_impl,
    attrs = {
        "models": attr.label_list(allow_files = True, mandatory = True),
        "runtime": attr.label_list(aspects = [runtime_sources], mandatory = True),
        "_renderer": attr.label(
            default = "//tools/docs:render_docs",
            executable = True,
            cfg = "exec",
        ),
    },
)

def _runtime_files_impl(ctx):
    files = depset(transitive = [d[RuntimeSourcesInfo].files for d in ctx.attr.runtime])
    return [DefaultInfo(files = files, runfiles = ctx.runfiles(transitive_files = files))]

# The srcs and hdrs of cc_library targets, as files (for tests that read the runtime).
runtime_files = rule(
    implementation = _runtime_files_impl,
    attrs = {"runtime": attr.label_list(aspects = [runtime_sources], mandatory = True)},
)

"""cc_headers(): the header files of C++ libraries as runfiles.

compile_bench compiles translation units against the runtime's and the generated headers;
in a test those must be in the runfiles tree, and cc_library provides them only to the
compiler. This rule forwards CcInfo's headers as files and runfiles.
"""

def _cc_headers_impl(ctx):
    headers = depset(transitive = [d[CcInfo].compilation_context.headers for d in ctx.attr.deps])
    return [DefaultInfo(files = headers, runfiles = ctx.runfiles(transitive_files = headers))]

cc_headers = rule(
    implementation = _cc_headers_impl,
    attrs = {"deps": attr.label_list(providers = [CcInfo])},
)

"""catch2_test(): a cc_test using Catch2 v2 with Bazel-aware main().

    load("//tools:catch2_test.bzl", "catch2_test")

    catch2_test(
        name = "foo_test",
        srcs = ["foo_test.cc"],   # #include <catch2/catch.hpp>, no main()
        deps = ["//:kvm"],
    )

main() comes from //third_party/catch2:catch2_main: it writes a JUnit report to
$XML_OUTPUT_FILE (bazel-testlogs/.../test.xml) and a readable log to stdout.
"""

load("@rules_cc//cc:defs.bzl", "cc_test")

def catch2_test(name, srcs, deps = [], data = [], **kwargs):
    cc_test(
        name = name,
        srcs = srcs,
        deps = deps + ["//third_party/catch2:catch2_main"],
        data = data,
        **kwargs
    )

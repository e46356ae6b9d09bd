#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (checked in; rerun after changing a format).

  fuzz/corpus/exit/       inputs of exit_fuzzer.cc: one per exit kind and per edge of the
                          data checks (offsets from generated/x86_64/kvm/abi/layout.h)
  fuzz/corpus/memory/     inputs of memory_fuzzer.cc: operations at region starts, ends,
                          borders between adjacent slots, and near 2^64
  fuzz/corpus/generator/  inputs of generator_fuzzer.cc: the fixture headers
                          (tests/generator/fixtures/*/linux/kvm.h) and variants of them with
                          constructs kvmgen must refuse or handle

Reproducers of bugs the harnesses found are added once the bug is fixed (see OPEN below);
`make_seeds.py --print-open NAME` prints one that is still open. Files in fuzz/corpus/ that
this script does not write are left alone.
"""

import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

# ---- exit ---------------------------------------------------------------------------------
KVM_RUN_SIZE = 2352            # sizeof(kvm_run)
MAX_MAPPING = 3 * 4096
EXIT_REASON = 8                # offsetof(kvm_run, exit_reason)
U = 32                         # offsetof(kvm_run, <union>)
IO, HYPERCALL, MMIO, INTERNAL_ERROR, SYSTEM_EVENT, X86_RDMSR = 2, 3, 6, 17, 24, 29
LOONGARCH_IOCSR, MEMORY_FAULT, TDX, ARM_SEA, ARM_LDST64B, SNP_REQ_CERTS = 38, 39, 40, 41, 42, 43


def exit_input(reason, union=b"", mapped=MAX_MAPPING, interrupted=False, eagain=False, tail=b""):
    """status byte, mapping-size selector, then the kvm_run bytes."""
    status = (1 if interrupted else 0) | (2 if eagain else 0)
    sel = mapped - KVM_RUN_SIZE
    page = bytearray(U + len(union))
    struct.pack_into("<I", page, EXIT_REASON, reason)
    page[U:U + len(union)] = union
    return struct.pack("<BH", status, sel) + bytes(page) + tail


def io(direction, size, port, count, data_offset):
    return struct.pack("<BBHIQ", direction, size, port, count, data_offset)


def exit_seeds():
    m = MAX_MAPPING
    return {
        "io_out_byte": exit_input(IO, io(1, 1, 0x3F8, 1, 4096)),
        "io_in_rep_words": exit_input(IO, io(0, 2, 0x1F0, 3, 4096)),
        "io_data_ends_at_mapping_end": exit_input(IO, io(1, 4, 0x80, 1, m - 4)),
        "io_data_past_mapping_end": exit_input(IO, io(1, 4, 0x80, 1, m - 3)),
        "io_count_overflow": exit_input(IO, io(0, 4, 0x60, 0xFFFFFFFF, 4096)),
        "io_small_mapping": exit_input(IO, io(1, 2, 0x70, 1, KVM_RUN_SIZE - 2), mapped=KVM_RUN_SIZE),
        "mmio_write_8": exit_input(MMIO, struct.pack("<Q8sIB", 0xFEE00000, b"\x11" * 8, 8, 1)),
        "mmio_len_9": exit_input(MMIO, struct.pack("<Q8sIB", 0xFED00000, b"", 9, 0)),
        "system_event_ndata_1000": exit_input(SYSTEM_EVENT, struct.pack("<IIQ", 2, 1000, 7)),
        "internal_error_emulation": exit_input(
            INTERNAL_ERROR, struct.pack("<IIQB15s", 1, 2, 1, 3, b"\x0f\x0b\x90")),
        "rdmsr": exit_input(X86_RDMSR, struct.pack("<B7xIIQ", 0, 1, 0x10, 0)),
        "hypercall": exit_input(HYPERCALL, struct.pack("<Q6QQII", 9, 1, 2, 3, 4, 5, 6, 0, 1, 0)),
        "loongarch_iocsr_write_8": exit_input(
            LOONGARCH_IOCSR, struct.pack("<Q8sIB", 0x420, b"\x22" * 8, 8, 1)),
        "loongarch_iocsr_len_9": exit_input(LOONGARCH_IOCSR, struct.pack("<Q8sIB", 0x420, b"", 9, 0)),
        "memory_fault_private": exit_input(MEMORY_FAULT, struct.pack("<QQQ", 8, 0x80000000, 0x1000)),
        "memory_fault_interrupted": exit_input(
            MEMORY_FAULT, struct.pack("<QQQ", 0, 0x1000, 0x1000), interrupted=True),
        "tdx_get_quote": exit_input(TDX, struct.pack("<QQQQQ", 0, 0x10002, 0, 0x7000, 0x1000)),
        "arm_sea": exit_input(ARM_SEA, struct.pack("<QQQQ", 1, 0x96000010, 0xffff0000, 0x9000)),
        "arm_ldst64b": exit_input(ARM_LDST64B, struct.pack("<QQ", 0x92000046, 0x9000000)),
        "snp_req_certs": exit_input(SNP_REQ_CERTS, struct.pack("<QQQ", 0x7000, 4, 0)),
        "reason_newer_than_headers": exit_input(200, b"\xff" * 64),
        "interrupted_eagain": exit_input(IO, io(1, 1, 0x3F8, 1, 4096), interrupted=True, eagain=True),
    }


# ---- memory -------------------------------------------------------------------------------
# op byte: bits 0-2 kind (0 contains, 1 span, 2 host_ptr, 3 read, 4 write, 5 u64 obj,
# 6 3-byte obj, 7 page+1-byte obj), bits 3-4 address mode (0 absolute u64, 1 region start +
# s16, 2 region end + s16, 3 2^64-1 - u16), bits 5-6 length mode (0 u8, 1 u16, 2 u64,
# 3 region size + s8); then the region index byte, the address operand, the length operand.
# Regions (memory_fuzzer.cc): 0 [0, 8K), 1 [64K, 68K), 2 [68K, 76K), 3 [4G-4K, 4G), 4 top.
CONTAINS, SPAN, HOST_PTR, READ, WRITE, OBJ64, OBJ3, OBJBIG = range(8)
ABS, START, END, TOP = range(4)
L8, L16, L64, LSIZE = range(4)


def mop(kind, amode, lmode, region, addr, length):
    out = struct.pack("<BB", kind | amode << 3 | lmode << 5, region)
    out += struct.pack({ABS: "<Q", START: "<h", END: "<h", TOP: "<H"}[amode], addr)
    out += struct.pack({L8: "<B", L16: "<H", L64: "<Q", LSIZE: "<b"}[lmode], length)
    return out


def memory_seeds():
    return {
        "whole_regions": b"".join(mop(SPAN, START, LSIZE, r, 0, 0) for r in range(5)),
        "one_past_each_region": b"".join(mop(CONTAINS, START, LSIZE, r, 0, 1) for r in range(5)),
        "last_byte_of_each_region": b"".join(mop(SPAN, END, L8, r, -1, 1) for r in range(5)),
        "across_adjacent_slots": mop(SPAN, END, L8, 1, -4, 8) + mop(READ, END, L8, 1, -1, 2),
        "empty_at_region_end": mop(SPAN, END, L8, 2, 0, 0) + mop(CONTAINS, END, L8, 4, 0, 0),
        "below_4g_end": mop(WRITE, END, L16, 3, -16, 16) + mop(READ, END, L16, 3, -16, 17),
        "top_region_objects": mop(OBJ64, END, L64, 4, -8, 0x1122334455667788)
        + mop(OBJ3, END, L8, 4, -3, 0) + mop(OBJBIG, START, L8, 4, 0, 0),
        "near_2_64": mop(CONTAINS, TOP, L8, 0, 0, 1) + mop(SPAN, TOP, L8, 0, 1, 2)
        + mop(OBJ64, TOP, L8, 0, 7, 0),
        "length_overflow": mop(CONTAINS, START, L64, 0, 0, 2**64 - 1)
        + mop(SPAN, START, L64, 4, 4096, 2**64 - 4096),
        "absolute_addresses": mop(CONTAINS, ABS, L16, 0, 0x10FFF, 2) + mop(SPAN, ABS, L8, 0, 0x1FFF, 1)
        + mop(HOST_PTR, ABS, L8, 0, 0x3000, 1),
        "read_write_roundtrip": mop(WRITE, START, L16, 0, 0x100, 300) + mop(READ, START, L16, 0, 0x100, 300),
        "big_object_across_end": mop(OBJBIG, END, L8, 0, -4096, 0) + mop(OBJBIG, END, L8, 1, -4096, 0),
    }


# ---- generator ----------------------------------------------------------------------------
def generator_seeds():
    fixtures = os.path.join(ROOT, "tests", "generator", "fixtures")
    basic = open(os.path.join(fixtures, "basic", "linux", "kvm.h"), "rb").read()
    newer = open(os.path.join(fixtures, "newer", "linux", "kvm.h"), "rb").read()
    head = b"#include <linux/types.h>\n#include <linux/ioctl.h>\n#include <asm/kvm.h>\n#define KVMIO 0xAE\n"
    return {
        "fixture_basic": basic,
        "fixture_newer": newer,
        "empty": b"",
        "only_includes": head,
        "not_c": b"struct {{{ \x00\xff\n#define\n",
        "ioctl_without_io_macro": head + b"#define KVM_GET_THING 0xAE01\n#define KVM_RUN _IO(KVMIO, 0x80)\n",
        "ioctl_unknown_type": head + b"#define KVM_SET_FOO _IOW(KVMIO, 0x90, struct kvm_nope)\n",
        "ioctl_int_and_array": head
        + b"struct kvm_a { __u32 n; __u64 e[]; };\n#define KVM_A _IOWR(KVMIO, 0x91, struct kvm_a)\n"
        b"#define KVM_B _IOR(KVMIO, 0x92, int)\n#define KVM_C _IOW(KVMIO, 0x93, __u64[2])\n",
        "records": head
        + b"struct kvm_bits { __u64 a : 63; __u64 b : 1; __u8 c : 0; __u8 d; };\n"
        b"union kvm_u { struct { __u8 x; }; __u16 y; } __attribute__((aligned(16)));\n"
        b"struct kvm_nested { struct kvm_bits b; union kvm_u u[3]; struct { int z; } named; };\n"
        b"struct kvm_packed { __u8 a; __u32 b; } __attribute__((packed));\n",
        "enums_and_families": head
        + b"enum kvm_device_type { KVM_DEV_TYPE_A = 1, KVM_DEV_TYPE_B = -1, KVM_DEV_TYPE_C = 0x7fffffff };\n"
        b"#define KVM_CAP_X 1\n#define KVM_CAP_Y 1\n#define KVM_EXIT_Z (1ULL << 63)\n"
        b"#define KVM_MEM_A (1 << 3)\n#define KVM_MEM_B 0x8\n",
        "cpp_name_clash": head + b"#define KVM_CAP_FOO_BAR 1\n#define KVM_CAP_FOO__BAR 2\n#define KVM_CAP_FooBar 3\n",
        "macros_odd": head
        + b"#define KVM_SELF KVM_SELF\n#define KVM_FN(x) (x)\n#define KVM_STR \"str\"\n"
        b"#define KVM_FLOAT 1.5\n#define KVM_NEG (-1)\n#define KVM_BIG 18446744073709551615ULL\n"
        b"#define KVM_API_VERSION 12\n",
    }


# ---- regressions: reproducers of bugs the harnesses found ---------------------------------
# Written to the corpus only once fixed: a name in OPEN is a bug still open (see
# fuzz/README.md); `make_seeds.py --print-open NAME` prints its reproducer.
OPEN = set()  # every finding so far is fixed; its reproducer is a regression seed now


def regression_seeds():
    basic = open(os.path.join(ROOT, "tests", "generator", "fixtures", "basic", "linux", "kvm.h"), "rb").read()
    first_ioctl = basic.rfind(b"\n", 0, basic.find(b"_IO(")) + 1
    return {
        "exit": {
            # IO data at offset 30 overlaps kvm_run.io itself: IoExit::set_value() rewrites
            # io.size, and the next value()/set_value() shifts by 8 * (size - 1) >= 64.
            "exit_io_data_overlaps_io_header": exit_input(IO, io(1, 4, 0x3F8, 50, 30)),
        },
        "generator": {
            # std::regex in find_cap_comments() recurses per character of the capability name.
            "generator_cap_comment_stack_overflow": basic[:first_ioctl]
            + b"/* Available with KVM_CAP_" + b"A" * 200000 + b" */\n" + basic[first_ioctl:],
            # kvmgen split the header on "\n" only, clang also on a lone "\r": the line clang
            # gave an ioctl ran past the end of kvmgen's line table in gating_cap_for().
            "generator_lone_cr_line_numbers": basic.replace(b"\n", b"\r"),
        },
    }


def write(name, seeds):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for n, data in seeds.items():
        with open(os.path.join(d, n), "wb") as f:
            f.write(data)
    print(f"{d}: {len(seeds)} seeds")


if __name__ == "__main__":
    regressions = regression_seeds()
    if len(sys.argv) == 3 and sys.argv[1] == "--print-open":
        for seeds in regressions.values():
            if sys.argv[2] in seeds:
                sys.stdout.buffer.write(seeds[sys.argv[2]])
                sys.exit(0)
        sys.exit(f"no reproducer named {sys.argv[2]}")
    if len(sys.argv) != 1:
        sys.exit("usage: make_seeds.py [--print-open NAME]")
    fixed = {h: {n: d for n, d in seeds.items() if n not in OPEN} for h, seeds in regressions.items()}
    write("exit", {**exit_seeds(), **fixed.get("exit", {})})
    write("memory", {**memory_seeds(), **fixed.get("memory", {})})
    write("generator", {**generator_seeds(), **fixed.get("generator", {})})

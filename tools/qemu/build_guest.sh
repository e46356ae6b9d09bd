#!/usr/bin/env bash
# Cross-compiles the guest side of the QEMU harness for one arch, static:
#   tools/qemu/build_guest.sh ARCH       (ARCH: aarch64 | riscv64)
# Prints the output directory, which holds kvm_tests (the runtime and its Catch2 tests for
# that arch), init (tools/qemu/guest_init.cc) and, where the arch has one, hello_vmm.
# Incremental (tools/qemu/guest.mk); the compilers come from Debian's g++-<arch>-linux-gnu
# (tools/bootstrap.sh), a missing one is an error.
set -euo pipefail

arch="${1:?usage: build_guest.sh ARCH}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${KVM_QEMU_CACHE:-$root/.cache/qemu}"
out="$cache/build/$arch"

triple="$arch-linux-gnu"
if ! command -v "$triple-g++" >/dev/null; then
  echo "build_guest.sh: $triple-g++ not found (tools/bootstrap.sh installs g++-$triple)" >&2
  exit 1
fi
# Catch2 2 is header-only; the cross compiler must not see the rest of the host's
# /usr/include, so it gets a directory holding only <catch2/catch.hpp>.
catch2="$cache/include"
if [[ ! -f /usr/include/catch2/catch.hpp ]]; then
  echo "build_guest.sh: /usr/include/catch2/catch.hpp missing (Debian package catch2)" >&2
  exit 1
fi
mkdir -p "$catch2" "$out"
ln -sfn /usr/include/catch2 "$catch2/catch2"

cd "$root"
make -s -f tools/qemu/guest.mk -j"${KVM_QEMU_JOBS:-2}" ARCH="$arch" OUT="$out" \
  CATCH2_INCLUDE="$catch2" >&2
echo "$out"

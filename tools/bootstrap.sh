#!/usr/bin/env bash
# Installs the Debian (12/bookworm) packages needed to build and test kvm_cpp, then fetches
# the kernel headers of the version matrix (tools/kernel_headers.sh) and the LoongArch
# sysroot (tools/cross_sysroot.sh) into .cache/, without installing those.
# Idempotent: when everything is there it only runs dpkg-query and two cache checks (fast,
# no network, no output). Otherwise it runs `apt-get update` + `apt-get install`
# (as root, or through sudo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fetch_downloads() {
  tools/kernel_headers.sh
  tools/cross_sysroot.sh
}

packages=(
  bazel-bootstrap             # /usr/bin/bazel (4.2.3)
  bazel-rules-java            # @rules_java (see WORKSPACE)
  g++
  clang-14
  libclang-14-dev             # clang-14's own headers (tools/docs' python3-clang-14)
  clang-16                    # clang_target_test: every arch, LoongArch included
  libclang-16-dev             # @llvm16//:libclang, kvmgen's parser
  python3-clang-14
  catch2                      # <catch2/catch.hpp> (v2)
  libkainjow-mustache-dev     # <kainjow/mustache.hpp>
  python3                     # tools/count_results.py
  python3-jinja2              # tools/docs: the reference manual (docs/reference/)
  libbenchmark-dev
  linux-libc-dev              # <linux/kvm.h>
  linux-libc-dev-arm64-cross  # <linux/kvm.h> for aarch64: generated/aarch64
  linux-libc-dev-riscv64-cross  # <linux/kvm.h> for riscv64: generated/riscv64
  libstdc++-12-dev-arm64-cross  # C/C++ standard headers for clang --target=aarch64-linux-gnu
  libstdc++-12-dev-riscv64-cross  # ... and riscv64-linux-gnu (tools/clang_target_test.bzl)
  libstdc++-12-dev-s390x-cross    # ... s390x-linux-gnu
  libstdc++-12-dev-ppc64el-cross  # ... powerpc64le-linux-gnu
  linux-libc-dev-s390x-cross      # the 6.1 headers of s390x and powerpc64le (version matrix)
  linux-libc-dev-ppc64el-cross
  nlohmann-json3-dev          # <nlohmann/json.hpp>: `kvmgen diff` reads kvm_api.json
  clang-format
  libclang-rt-14-dev          # sanitizer runtimes for clang
  cmake                       # the CMake build (CMakeLists.txt, tools/cmake_test.sh)
  ninja-build                 # its generator
  pkgconf                     # pkg-config: tests/vendoring/install/install_test.sh
  qemu-system-arm             # qemu-system-aarch64: tools/qemu/ (aarch64 tests on nested KVM)
  qemu-system-misc            # qemu-system-riscv64 (OpenSBI comes with qemu-system-data)
  g++-aarch64-linux-gnu       # static guest-side test binaries (tools/qemu/build_guest.sh)
  g++-riscv64-linux-gnu
  cpio                        # the guests' initramfs (tools/qemu/make_initramfs.sh)
  xz-utils                    # riscv64's kvm.ko.xz
)

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  fetch_downloads
  exit 0
fi

echo "bootstrap: installing missing packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "bootstrap: not root and sudo not found; install as root: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fetch_downloads
echo "bootstrap: done"

#!/usr/bin/env bash
# Fetches the C and C++ standard headers of targets that Debian 12 has no cross packages for,
# so that clang can compile for them (tools/clang_target_test.bzl, the version matrix test):
#
#   .cache/sysroot/loongarch64/usr/...   trixie's libc6-dev, libgcc-14-dev and libstdc++-14-dev
#                                        for loong64, unpacked (not installed)
#   .cache/sysroot/loongarch64/PACKAGES  what was unpacked, one `package=version` a line
#
# Used as `clang --target=loongarch64-linux-gnu --sysroot=.cache/sysroot/loongarch64`.
# Idempotent and cached, like tools/kernel_headers.sh, with the same private apt state.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools/private_apt.sh
source tools/private_apt.sh

suite=trixie
packages=(libc6-dev-loong64-cross libgcc-14-dev-loong64-cross libstdc++-14-dev-loong64-cross)
dest="$PWD/.cache/sysroot/loongarch64"
[[ -f "$dest/PACKAGES" ]] && exit 0

private_apt_init "$PWD/.cache/sysroot/apt" "$suite"
rm -rf "$dest"
mkdir -p "$dest"
for pkg in "${packages[@]}"; do
  version="$(private_apt_versions "$pkg" "$suite" | sort -V | tail -n 1)"
  [[ -n "$version" ]] || private_apt_die "$suite has no $pkg"
  echo "cross_sysroot: loongarch64: $pkg $version from $suite"
  private_apt_fetch "$pkg=$version" "$dest"
  echo "$pkg=$version" >>"$dest/PACKAGES.part"
done
mv "$dest/PACKAGES.part" "$dest/PACKAGES"

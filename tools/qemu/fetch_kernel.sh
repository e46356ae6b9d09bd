#!/usr/bin/env bash
# Downloads (never installs) one Debian kernel package for a guest arch and unpacks it:
#   tools/qemu/fetch_kernel.sh ARCH SUITE
#     ARCH  aarch64 | riscv64
#     SUITE bookworm | trixie | sid
# Prints the directory holding the unpacked package (boot/, lib/modules/). Uses a private
# apt configuration (tools/private_apt.sh: sources list, lists, archives) under
# $KVM_QEMU_CACHE (default .cache/qemu/), so the system's apt state is never touched; a second call with the same
# arguments finds the unpacked package and downloads nothing. Any failure exits non-zero
# with the reason: a missing kernel is a CI failure, not a skip.
set -euo pipefail

arch="${1:?usage: fetch_kernel.sh ARCH SUITE}"
suite="${2:?usage: fetch_kernel.sh ARCH SUITE}"
case "$arch" in
  aarch64) deb_arch=arm64 ;;
  riscv64) deb_arch=riscv64 ;;
  *) echo "fetch_kernel.sh: unknown arch $arch" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${KVM_QEMU_CACHE:-$root/.cache/qemu}"
apt_dir="$cache/apt/$deb_arch-$suite"
unpacked="$cache/kernels/$arch-$suite"

# Already unpacked: nothing to download (a refresh removes the directory).
if [[ -f "$unpacked/.complete" ]]; then
  echo "$unpacked"
  exit 0
fi

# The private apt setup of tools/private_apt.sh, for this arch only, from the archive the
# system's own sources name.
# shellcheck source=tools/private_apt.sh
source "$root/tools/private_apt.sh"
PRIVATE_APT_ARCH="$deb_arch" private_apt_init "$apt_dir" "$suite"
apt_opts=("${private_apt_opts[@]}" -q)

# linux-image-<deb_arch> is the suite's kernel metapackage: its first linux-image-*
# dependency is the current kernel (signed or unsigned, both hold the same image).
pkg="$(apt-cache "${apt_opts[@]}" depends "linux-image-$deb_arch" |
  sed -nE 's/^ *Depends: (linux-image-[^ ]+).*/\1/p' | head -n 1)"
if [[ -z "$pkg" ]]; then
  echo "fetch_kernel.sh: no kernel behind linux-image-$deb_arch in $suite" >&2
  exit 1
fi
# Newer suites split the kernel package: the image and the modules are in
# linux-binary-<version> and linux-modules-<version>, which it depends on.
pkgs=("$pkg" $(apt-cache "${apt_opts[@]}" depends "$pkg" |
  sed -nE 's/^ *Depends: (linux-(binary|modules)-[^ ]+).*/\1/p'))
echo "fetch_kernel.sh: $arch $suite: ${pkgs[*]}" >&2
(cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" download "${pkgs[@]}" >&2)

# Only the kernel image and KVM's module (riscv64 builds KVM as a module without
# dependencies; arm64 has it built in): the modules tree would be ~300 MB more.
rm -rf "$unpacked"
mkdir -p "$unpacked"
for p in "${pkgs[@]}"; do
  deb="$(ls -t "$apt_dir/archives/${p}"_*.deb | head -n 1)"
  # tar exits 2 when no member matches, which is fine for a package without them.
  dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$unpacked" --wildcards './boot/vmlinu*' '*/lib/modules/*/vmlinu*' \
      '*/kernel/arch/*/kvm/kvm.ko*' 2>/dev/null ||
    true
  rm -f "$deb"  # the unpacked files are the cache
done
# The image is boot/vmlinu[xz]-<version>, or <modules dir>/vmlinu[xz] in the split packages.
image="$(find "$unpacked" -type f -name 'vmlinu*' | head -n 1)"
if [[ -z "$image" ]]; then
  echo "fetch_kernel.sh: ${pkgs[*]} hold no kernel image (vmlinux/vmlinuz)" >&2
  exit 1
fi
echo "${image#"$unpacked"/}" >"$unpacked/.image"
echo "$pkg" >"$unpacked/.package"
touch "$unpacked/.complete"
echo "$unpacked"

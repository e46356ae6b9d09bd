#!/usr/bin/env bash
# Fetches the kernel uapi headers listed in generator/kernel_headers.versions and lays out one
# include tree per arch:
#
#   .cache/kernel-headers/<series>/<arch>/include/{linux,asm,asm-generic}/
#   .cache/kernel-headers/<series>/VERSION     the exact Debian version unpacked (one line)
#   .cache/kernel-headers/<series>/NOTE        why it is not the listed version, if it is not
#
#   tools/kernel_headers.sh            every series of the versions file
#   tools/kernel_headers.sh newest     one series
#   tools/kernel_headers.sh --root     print the cache root and exit
#
# Idempotent and cached: a series whose VERSION is already there is not fetched again. The
# system's apt configuration is never touched: apt runs with a private sources list, state
# and archive directories under .cache/kernel-headers/apt/, against the archive URI that the
# system's own /etc/apt/sources.list.d/*.sources names. Nothing is installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD/.cache/kernel-headers"
versions_file="generator/kernel_headers.versions"
if [[ "${1:-}" == "--root" ]]; then
  echo "$root"
  exit 0
fi

# Debian triplet of each arch kvmgen generates for (generator/arch.cc knows the same list).
declare -A triplet=(
  [x86_64]=x86_64-linux-gnu
  [aarch64]=aarch64-linux-gnu
  [riscv64]=riscv64-linux-gnu
  [s390x]=s390x-linux-gnu
  [powerpc64le]=powerpc64le-linux-gnu
  [loongarch64]=loongarch64-linux-gnu
)

# shellcheck source=tools/private_apt.sh
source tools/private_apt.sh
die() { private_apt_die "$@"; }

apt_ready=0
prepare_apt() {
  [[ $apt_ready -eq 1 ]] && return
  # shellcheck disable=SC2046  # one word a suite
  private_apt_init "$root/apt" $(awk '!/^#/ && NF == 3 {print $2}' "$versions_file" | sort -u)
  apt_ready=1
}

# The version to fetch: the listed one when the suite still has it, else the newest of the
# same upstream series (major.minor) in that suite.
choose_version() {
  local suite="$1" want="$2" series available
  available="$(private_apt_versions linux-libc-dev "$suite")"
  if grep -qxF -- "$want" <<<"$available"; then
    echo "$want"
    return
  fi
  series="$(sed -E 's/^([0-9]+\.[0-9]+)\..*/\1/' <<<"$want")"
  { grep -E "^${series//./\\.}\." <<<"$available" || true; } | sort -V | tail -n 1
}

fetch_series() {
  local series="$1" suite="$2" want="$3" dest="$root/$1"
  if [[ -f "$dest/VERSION" ]]; then
    return
  fi
  prepare_apt
  local version
  version="$(choose_version "$suite" "$want")"
  [[ -n "$version" ]] ||
    die "$suite has no linux-libc-dev $want, nor any of its series (apt-cache madison)"
  local work="$root/.work-$series"
  rm -rf "$work" "$dest"
  mkdir -p "$work"
  echo "kernel_headers: $series: linux-libc-dev $version from $suite"
  private_apt_fetch "linux-libc-dev=$version" "$work/pkg"
  local inc="$work/pkg/usr/include" arch
  for arch in "${!triplet[@]}"; do
    local t="${triplet[$arch]}"
    [[ -f "$inc/$t/asm/kvm.h" ]] || die "linux-libc-dev $version has no $t/asm/kvm.h"
    mkdir -p "$work/tree/$arch/include"
    # The package's per-arch asm/ is symlinks into usr/lib/linux/uapi: copy what they point to.
    cp -rL "$inc/linux" "$inc/asm-generic" "$work/tree/$arch/include/"
    cp -rL "$inc/$t/asm" "$work/tree/$arch/include/asm"
  done
  mv "$work/tree" "$dest"
  echo "$version" >"$dest/VERSION"
  if [[ "$version" != "$want" ]]; then
    echo "$suite no longer has linux-libc-dev $want; $version is the newest of its series" \
      >"$dest/NOTE"
    echo "kernel_headers: note: $(cat "$dest/NOTE")"
  fi
  rm -rf "$work"
}

[[ -f "$versions_file" ]] || die "$versions_file is missing"
wanted=("$@")
found=0
while read -r series suite version; do
  if [[ ${#wanted[@]} -gt 0 ]] && ! printf '%s\n' "${wanted[@]}" | grep -qxF -- "$series"; then
    continue
  fi
  fetch_series "$series" "$suite" "$version"
  found=$((found + 1))
done < <(awk '!/^#/ && NF == 3' "$versions_file")
if [[ ${#wanted[@]} -gt 0 && $found -ne ${#wanted[@]} ]]; then
  die "unknown series in: ${wanted[*]} (see $versions_file)"
fi

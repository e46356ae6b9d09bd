#!/usr/bin/env bash
# Packs a guest's initramfs (cpio newc):
#   tools/qemu/make_initramfs.sh KERNEL_DIR INIT PROGRAM OUT.cpio
# /init is INIT, /kvm_tests is PROGRAM (whatever it is, init runs it under that name), and
# /kvm.ko is KVM's module when the kernel package has one (decompressed here: the guest's
# finit_module would need the kernel's xz support flag otherwise).
set -euo pipefail

kernel_dir="$1" init="$2" program="$3" out="$4"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT

install -m 0755 "$init" "$tree/init"
install -m 0755 "$program" "$tree/kvm_tests"
ko="$(find "$kernel_dir" -name 'kvm.ko*' | head -n 1)"
case "$ko" in
  "") ;;
  *.xz) xz -dc "$ko" >"$tree/kvm.ko" ;;
  *.zst) zstd -dcq "$ko" >"$tree/kvm.ko" ;;
  *) cp "$ko" "$tree/kvm.ko" ;;
esac
(cd "$tree" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out"

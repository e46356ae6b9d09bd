#!/usr/bin/env bash
# Runs the aarch64 or riscv64 tests on real KVM inside a QEMU guest:
#   tools/qemu/run.sh ARCH SUITE [PROGRAM]
#     ARCH    aarch64 | riscv64
#     SUITE   the Debian suite whose kernel boots: bookworm (6.1), trixie (6.12), sid (newest)
#     PROGRAM kvm_tests (default) or hello_vmm
# Downloads the kernel (fetch_kernel.sh), cross-builds the tests (build_guest.sh), packs them
# with tools/qemu/guest_init.cc as /init into an initramfs and boots QEMU (TCG, with the
# virtualization extensions on, so the guest kernel has a working /dev/kvm). The guest prints
# the Catch2 JUnit report on the serial console between marker lines; this script cuts it
# out to $KVM_QEMU_CACHE/results/ARCH-SUITE.xml (default .cache/qemu/) and prints its path.
# For another PROGRAM (hello_vmm) it prints the program's output and writes a one-test report
# ARCH-SUITE-PROGRAM.xml of its exit status.
# Exit status: 0 when the report arrived and no test failed, 1 otherwise (a boot that never
# reports, a QEMU error or a timeout is a failure, never a skip).
set -euo pipefail

arch="${1:?usage: run.sh ARCH SUITE [kvm_tests|hello_vmm]}"
suite="${2:?usage: run.sh ARCH SUITE [kvm_tests|hello_vmm]}"
program="${3:-kvm_tests}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${KVM_QEMU_CACHE:-$root/.cache/qemu}"

kernel_dir="$("$here/fetch_kernel.sh" "$arch" "$suite")"
build="$("$here/build_guest.sh" "$arch")"
[[ -x "$build/$program" ]] || { echo "run.sh: no $program for $arch" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/kvm-qemu-$arch-$suite.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$here/make_initramfs.sh" "$kernel_dir" "$build/init" "$build/$program" "$work/initramfs.cpio"

name="$arch-$suite"
[[ "$program" == kvm_tests ]] || name+="-$program"
log="$cache/results/$name.log"
report="$cache/results/$name.xml"
mkdir -p "$cache/results"
rm -f "$log" "$report"

# -nic none: without it QEMU wants a ROM file for the default NIC that Debian's qemu lacks.
case "$arch" in
  aarch64)
    qemu=(qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max
      -append "console=ttyAMA0 quiet loglevel=1 panic=-1")
    ;;
  riscv64)
    qemu=(qemu-system-riscv64 -M virt -cpu rv64,h=true -bios default
      -append "console=ttyS0 quiet loglevel=1 panic=-1")
    ;;
  *) echo "run.sh: unknown arch $arch" >&2; exit 2 ;;
esac
command -v "${qemu[0]}" >/dev/null || {
  echo "run.sh: ${qemu[0]} not found (tools/bootstrap.sh installs it)" >&2
  exit 1
}
qemu+=(-accel tcg -smp 2 -m 1024 -nic none -display none -monitor none -no-reboot
  -serial "file:$log" -kernel "$kernel_dir/$(cat "$kernel_dir/.image")"
  -initrd "$work/initramfs.cpio")

start=$SECONDS
qemu_rc=0
timeout "${KVM_QEMU_TIMEOUT:-600}" "${qemu[@]}" </dev/null || qemu_rc=$?
tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
echo "run.sh: $arch $suite ($(cat "$kernel_dir/.package")): QEMU exited $qemu_rc after" \
  "$((SECONDS - start)) s; console log $log" >&2

# Another program (an example VMM): its output, and a one-test JUnit report of its exit status.
if [[ "$program" != kvm_tests ]]; then
  sed -n '/^KVMCPP-PROGRAM-BEGIN$/,/^KVMCPP-PROGRAM-END$/p' "$log" | sed '1d;$d' >&2
  failure=""
  grep -q '^KVMCPP-PROGRAM-STATUS: 0$' "$log" ||
    failure="<failure message=\"$program failed or never ran (QEMU status $qemu_rc)\"/>"
  printf '<testsuites><testsuite name="%s"><testcase name="%s">%s</testcase></testsuite></testsuites>\n' \
    "$name" "$program" "$failure" >"$report"
  echo "$report"
  [[ -z "$failure" ]]
  exit
fi

sed -n '/^KVMCPP-REPORT-BEGIN$/,/^KVMCPP-REPORT-END$/p' "$log" | sed '1d;$d' >"$report"
grep -E '^(\[FAILED\]|KVMCPP-INIT-FAILED|SKIPPED|Catch2 summary|.*: FAILED in)' "$log" >&2 || true
if [[ $qemu_rc -ne 0 || ! -s "$report" ]]; then
  echo "run.sh: $arch $suite: no test report (QEMU status $qemu_rc)" >&2
  rm -f "$report"
  exit 1
fi
echo "$report"
grep -q '^KVMCPP-PROGRAM-STATUS: 0$' "$log"

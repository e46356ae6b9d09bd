#!/usr/bin/env bash
# CI step: the aarch64 and riscv64 suites on real KVM inside QEMU, on each kernel of the
# matrix below (tools/qemu/run.sh per kernel). Ends with `qemu: N passed, M failed`,
# counted from the guests' JUnit reports (tools/qemu/count_reports.py); a kernel whose run
# gave no report counts as a failure. Exit status 0 only when every run reported and passed.
#   tools/qemu/ci.sh [ARCH-SUITE[:PROGRAM]...]     (default: the whole matrix)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
matrix=("$@")
if [[ ${#matrix[@]} -eq 0 ]]; then
  # bookworm 6.1, trixie 6.12, sid the newest Debian kernel; riscv64 is official from trixie.
  matrix=(aarch64-bookworm aarch64-trixie aarch64-sid riscv64-trixie riscv64-sid)
  # The README's example VMMs, once per arch (ARCH-SUITE:PROGRAM).
  matrix+=(aarch64-bookworm:hello_vmm riscv64-trixie:hello_vmm)
fi

start=$SECONDS
results=()
rc=0
for run in "${matrix[@]}"; do
  kernel="${run%%:*}" program=kvm_tests
  [[ "$run" == *:* ]] && program="${run#*:}"
  arch="${kernel%%-*}" suite="${kernel#*-}"
  if report="$("$here/run.sh" "$arch" "$suite" "$program")"; then
    results+=("$run=$report")
  else
    rc=1
    # A report that arrived with failures is still counted test by test.
    results+=("$run=${report:--}")
  fi
done
echo "qemu: ${#matrix[@]} guest runs took $((SECONDS - start)) s"
python3 "$here/count_reports.py" "${results[@]}" || rc=1
exit $rc

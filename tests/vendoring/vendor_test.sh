#!/usr/bin/env bash
# Vendoring, exactly as docs/vendoring.md tells a user to do it: copy runtime/ and
# generated/<arch>/ into another tree, then build an example VMM with nothing but the C++20
# compiler (no Bazel, no CMake, no build files), and run it on /dev/kvm.
#
# Run by Bazel as //tests/vendoring:vendor_test (the sources come from runfiles); also usable by
# hand: tests/vendoring/vendor_test.sh [SOURCE_ROOT] with TEST_TMPDIR set or not.
set -euo pipefail
src="${1:-$PWD}"
arch=x86_64
cxx="${CXX:-g++}"
if [[ -n "${TEST_TMPDIR:-}" ]]; then
  work="$TEST_TMPDIR/vendoring"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  work="$tmp/vendoring"
fi

step=0
t0=$(date +%s%N)
say() {  # one line per step, with the time since the start
  step=$((step + 1))
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf 'vendor_test: [%d] %s (%d.%01d s)\n' "$step" "$1" $((ms / 1000)) $((ms % 1000 / 100))
}

# 1. The user's project: their own sources plus a copy of ours under third_party/kvm-cpp.
rm -rf "$work"
mkdir -p "$work/myvmm/third_party/kvm-cpp/generated" "$work/myvmm/src"
cp -RL "$src/runtime" "$work/myvmm/third_party/kvm-cpp/runtime"
cp -RL "$src/generated/$arch" "$work/myvmm/third_party/kvm-cpp/generated/$arch"
rm -rf "$work/myvmm/third_party/kvm-cpp/generated/$arch/tests"  # not needed to build
cp -L "$src/examples/irqfd_device/irqfd_device.cc" "$work/myvmm/src/vmm.cc"
cp -L "$src/examples/save_restore/save_restore.cc" "$src/examples/save_restore/snapshot.cc" \
      "$src/examples/save_restore/snapshot.h" "$work/myvmm/src/"
chmod -R u+w "$work/myvmm"
say "copied runtime/ and generated/$arch/ into $work/myvmm/third_party/kvm-cpp ($(find "$work/myvmm/third_party" -type f | wc -l) files)"

# Nothing outside the copy may be needed: no BUILD, CMake or generator files came along.
if find "$work/myvmm/third_party" -name 'BUILD*' -o -name 'CMakeLists.txt' -o -name '*.bzl' | grep .; then
  echo "FAILED: build files in the vendored tree"
  exit 1
fi

# 2. Build with the compiler alone, from the user's tree (so no path can reach the original).
cd "$work/myvmm"
kvm=third_party/kvm-cpp
flags=(-std=c++20 -O1 -Wall -Wextra -I"$kvm/runtime" -I"$kvm/generated/$arch")
mkdir -p obj
(cd obj && "$cxx" "${flags[@]/#-I/-I../}" -c ../$kvm/runtime/kvm/*.cc ../$kvm/runtime/kvm/x86/*.cc \
   ../$kvm/generated/$arch/kvm/abi/layout_check.cc)
say "compiled the runtime, the x86 guest helpers and the layout check: $(ls obj | wc -l) objects with $cxx"
"$cxx" "${flags[@]}" src/vmm.cc obj/*.o -o vmm -pthread
"$cxx" "${flags[@]}" src/save_restore.cc src/snapshot.cc obj/*.o -o save_restore -pthread
say "linked two example VMMs (irqfd_device, save_restore)"

# 3. Run them.
./vmm | tee vmm.out
grep -q '^OK (' vmm.out
./save_restore | tee save_restore.out
grep -qx 'OK' save_restore.out
say "both ran their guests on /dev/kvm"
echo "vendor_test: OK"

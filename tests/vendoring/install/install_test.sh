#!/usr/bin/env bash
# The install flow, as a user of an installed kvm-cpp sees it (run by ctest as
# install_flow_test; see CMakeLists.txt):
#   1. `cmake --install <build> --prefix <tmp>/prefix`;
#   2. a consumer project configured with find_package(kvm) against that prefix builds and runs,
#      with kvm/kvm.h precompiled (target_precompile_headers, as bench/README.md suggests);
#   3. the same consumer source compiled with plain $CXX and `pkg-config --cflags --libs`
#      builds and runs;
#   4. the installed files mention neither the source nor the build tree (relocatable).
# Usage: install_test.sh BUILD_DIR WORK_DIR   (CMAKE_COMMAND and CXX from the environment)
set -euo pipefail
build="$1"
work="$2"
cmake="${CMAKE_COMMAND:-cmake}"
cxx="${CXX:-c++}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/../../.." && pwd)"

step=0
t0=$(date +%s%N)
say() {  # one line per step, with the time since the start
  step=$((step + 1))
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf 'install_flow_test: [%d] %s (%d.%01d s)\n' "$step" "$1" $((ms / 1000)) $((ms % 1000 / 100))
}

rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"

"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log"
say "installed into $prefix: $(find "$prefix" -type f | wc -l) files"
for f in include/kvm/kvm.h include/kvm/abi/kvm_abi.h include/kvm/x86/long_mode.h \
         lib/cmake/kvm/kvmConfig.cmake lib/cmake/kvm/kvmConfigVersion.cmake lib/cmake/kvm/kvmTargets.cmake; do
  [[ -f "$prefix/$f" ]] || { echo "FAILED: $prefix/$f was not installed"; exit 1; }
done
pcdir="$(dirname "$(find "$prefix" -name kvm.pc | head -1)")"
[[ -f "$pcdir/kvm.pc" && -f "$pcdir/kvm-x86-guest.pc" ]] || { echo "FAILED: no kvm.pc / kvm-x86-guest.pc"; exit 1; }

# 2. find_package(kvm)
"$cmake" -S "$here/consumer" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" > "$work/consumer-configure.log" 2>&1 \
  || { cat "$work/consumer-configure.log"; echo "FAILED: configuring the find_package consumer"; exit 1; }
"$cmake" --build "$work/consumer-build" > "$work/consumer-build.log" 2>&1 \
  || { cat "$work/consumer-build.log"; echo "FAILED: building the find_package consumer"; exit 1; }
say "find_package(kvm) consumer configured and built"
pch="$(find "$work/consumer-build" -name 'cmake_pch.hxx.gch' | head -1)"
[[ -n "$pch" ]] || { echo "FAILED: the consumer's precompiled kvm/kvm.h was not built"; exit 1; }
say "the consumer compiled against a precompiled kvm/kvm.h ($(du -h "$pch" | cut -f1))"
"$work/consumer-build/kvm_consumer" | tee "$work/cmake-consumer.out"
grep -q "guest said: hi from the guest" "$work/cmake-consumer.out"
say "find_package(kvm) consumer ran its guest"

# 3. pkg-config
export PKG_CONFIG_PATH="$pcdir"
flags="$(pkg-config --cflags --libs kvm-x86-guest kvm)"
echo "pkg-config --cflags --libs kvm-x86-guest kvm: $flags"
[[ "$(pkg-config --modversion kvm)" == "$(pkg-config --modversion kvm-x86-guest)" ]]
# shellcheck disable=SC2086
"$cxx" "$here/consumer/main.cc" $flags -o "$work/pc_consumer"
say "pkg-config consumer built with plain $cxx"
"$work/pc_consumer" | tee "$work/pc-consumer.out"
grep -q "guest said: hi from the guest" "$work/pc-consumer.out"
say "pkg-config consumer ran its guest"

# 4. relocatable: no installed header, CMake or pkg-config file points back into the source or
#    build tree (the libraries' debug info may, as usual).
if grep -rl --include='*.h' --include='*.cmake' --include='*.pc' \
     -e "$source_dir" -e "$(cd "$build" && pwd)" "$prefix"; then
  echo "FAILED: the files above name the source or build directory"
  exit 1
fi
say "installed files name neither the source nor the build tree"
echo "install_flow_test: OK"

#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang-14 (-fsanitize=fuzzer,address,undefined,
# outside Bazel) and fuzzes each for a bounded time:
#
#   tools/ci_fuzz.sh [SECONDS] [HARNESS...]     SECONDS per harness (default 60);
#                                               HARNESS: exit, memory, generator (default all)
#
# One line per step, with its duration, each starting with "fuzz:"; the LAST line is
#   fuzz: N passed, M failed
# counting one test per harness: a harness passes when it builds and its run ends without
# a finding. Exit status: 0 if every harness passed, 1 if any failed (crash, sanitizer report,
# failed harness check, timeout, OOM, leak, or a build failure), 2 for bad arguments.
# On a finding the sanitizer report is printed and the reproducer path is named: rerun it with
#   $FUZZ_OUT/bin/<harness>_fuzzer <reproducer>       (from the repository root)
#
# Needs clang-14, libclang-rt-14-dev (libFuzzer and sanitizer runtimes), libclang-16-dev and,
# for the memory harness, /dev/kvm. Work files go to $FUZZ_OUT (default
# ${TMPDIR:-/tmp}/kvm_cpp_fuzz): bin/, obj/, logs/, corpus/<harness>/ (inputs found while
# fuzzing; the checked-in seeds fuzz/corpus/<harness>/ are only read) and artifacts/.
set -uo pipefail
exec 2>&1  # one ordered stream: the counts line is always the last line

cd "$(dirname "${BASH_SOURCE[0]}")/.." || { echo "fuzz: 0 passed, 0 failed"; exit 1; }
root="$PWD"

all_harnesses=(exit memory generator)
seconds=60
harnesses=()
for arg in "$@"; do
  if [[ "$arg" =~ ^[0-9]+$ ]]; then
    seconds="$arg"
  elif [[ " ${all_harnesses[*]} " == *" $arg "* ]]; then
    harnesses+=("$arg")
  else
    echo "usage: tools/ci_fuzz.sh [SECONDS] [exit|memory|generator]..."
    echo "fuzz: 0 passed, 0 failed"
    exit 2
  fi
done
[[ ${#harnesses[@]} -eq 0 ]] && harnesses=("${all_harnesses[@]}")

out="${FUZZ_OUT:-${TMPDIR:-/tmp}/kvm_cpp_fuzz}"
mkdir -p "$out"/{bin,obj,logs,artifacts}

CXX="${FUZZ_CXX:-clang++-14}"
LLVM=/usr/lib/llvm-14
LIBCLANG=/usr/lib/llvm-16  # kvmgen's libclang (16: LoongArch), as in //generator
# shellcheck disable=SC2054  # commas inside compiler flags
sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all)
cxxflags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS
          "${sanitize[@]}" -fsanitize=fuzzer-no-link)
includes=(-I"$root" -I"$root/runtime" -I"$root/generated/x86_64" -I"$LIBCLANG/include")

passed=0
failed=0
declare -A status  # harness -> ok | failed

now() { date +%s; }
step() {  # step NAME START RESULT [DETAIL]
  local secs=$(($(now) - $2))
  echo "fuzz: $1: $3 (${secs}s)${4:+; $4}"
}

# Compiles sources into $out/obj/<prefix>/<name>.o, two at a time; prints the compiler
# output of failures. Returns non-zero if any failed.
compile() {
  local prefix="$1"
  shift
  local log="$out/logs/build_$prefix.log"
  : >"$log"
  # shellcheck disable=SC2016  # the sh -c script expands its own arguments
  printf '%s\n' "$@" | xargs -P 2 -I{} sh -c '
    src="$1"; shift; obj="$1"; shift; log="$1"; shift
    o="$obj/$(basename "$src" .cc).o"
    if ! "$@" -c "$src" -o "$o" >"$o.log" 2>&1; then cat "$o.log" >>"$log"; exit 1; fi
  ' _ {} "$out/obj/$prefix" "$log" "$CXX" "${cxxflags[@]}" "${includes[@]}"
  local rc=$?
  [[ $rc -ne 0 ]] && head -n 40 "$log"
  return $rc
}

link() {  # link HARNESS OBJECTS... [-- LIBS...]
  local h="$1"
  shift
  "$CXX" "${sanitize[@]}" -fsanitize=fuzzer -o "$out/bin/${h}_fuzzer" "$@" \
    >"$out/logs/link_$h.log" 2>&1 || { head -n 40 "$out/logs/link_$h.log"; return 1; }
}

# ---- toolchain --------------------------------------------------------------------------
t=$(now)
fuzzer_rt="$("$CXX" -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)"
if ! command -v "$CXX" >/dev/null || [[ ! -f "$fuzzer_rt" ]] || [[ ! -f "$LIBCLANG/include/clang-c/Index.h" ]]; then
  step "toolchain" "$t" "MISSING" "need $CXX, libclang-rt-14-dev and libclang-14-dev (tools/bootstrap.sh)"
  echo "fuzz: 0 passed, ${#harnesses[@]} failed"
  exit 1
fi
step "toolchain" "$t" "ok" "$("$CXX" --version | head -n 1), out $out, ${seconds}s per harness"

# ---- build ------------------------------------------------------------------------------
need_runtime=0
need_generator=0
for h in "${harnesses[@]}"; do
  case "$h" in
    exit | memory) need_runtime=1 ;;
    generator) need_generator=1 ;;
  esac
done

runtime_ok=1
if [[ $need_runtime -eq 1 ]]; then
  t=$(now)
  rm -rf "$out/obj/lib_runtime" && mkdir -p "$out/obj/lib_runtime"
  srcs=("$root"/runtime/kvm/*.cc)
  if compile lib_runtime "${srcs[@]}"; then
    step "build runtime/kvm/*.cc" "$t" "ok" "${#srcs[@]} files"
  else
    step "build runtime/kvm/*.cc" "$t" "FAILED"
    runtime_ok=0
  fi
fi

generator_ok=1
if [[ $need_generator -eq 1 ]]; then
  t=$(now)
  rm -rf "$out/obj/lib_generator" && mkdir -p "$out/obj/lib_generator"
  # The model builder and what it uses (not the renderer, kainjow Mustache or JSON).
  srcs=("$root"/generator/{arch,clang,families,header_text,ioctls,macros,naming,parse,records,rules}.cc)
  if compile lib_generator "${srcs[@]}"; then
    step "build generator model builder" "$t" "ok" "${#srcs[@]} files"
  else
    step "build generator model builder" "$t" "FAILED"
    generator_ok=0
  fi
fi

for h in "${harnesses[@]}"; do
  t=$(now)
  rm -rf "$out/obj/harness_$h" && mkdir -p "$out/obj/harness_$h"
  rm -f "$out/bin/${h}_fuzzer"
  case "$h" in
    exit | memory) deps_ok=$runtime_ok; deps=("$out"/obj/lib_runtime/*.o); libs=() ;;
    generator) deps_ok=$generator_ok; deps=("$out"/obj/lib_generator/*.o)
               # shellcheck disable=SC2054
               libs=(-L"$LIBCLANG/lib" -Wl,-rpath,"$LIBCLANG/lib" -lclang-16) ;;
  esac
  if [[ $deps_ok -ne 1 ]]; then
    step "build ${h}_fuzzer" "$t" "FAILED" "the code it fuzzes did not build"
    status[$h]=failed
  elif compile "harness_$h" "$root/fuzz/${h}_fuzzer.cc" &&
       link "$h" "$out/obj/harness_$h/${h}_fuzzer.o" "${deps[@]}" "${libs[@]}"; then
    step "build ${h}_fuzzer" "$t" "ok"
    status[$h]=ok
  else
    step "build ${h}_fuzzer" "$t" "FAILED"
    status[$h]=failed
  fi
done

# ---- fuzz -------------------------------------------------------------------------------
# Leak checking stays on (LeakSanitizer, libFuzzer's -detect_leaks=1 default) for every
# harness, including the generator's: libclang's allocations go through the same malloc, and
# the model builder disposes every index, translation unit and string it gets.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export KVM_FUZZ_SRCDIR="$root"

for h in "${harnesses[@]}"; do
  if [[ "${status[$h]}" != ok ]]; then
    failed=$((failed + 1))
    echo "fuzz: run ${h}_fuzzer: FAILED (not built)"
    continue
  fi
  t=$(now)
  work="$out/corpus/$h"
  mkdir -p "$work"
  log="$out/logs/run_$h.log"
  opts=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1
        -artifact_prefix="$out/artifacts/${h}-")
  [[ -f "$root/fuzz/$h.dict" ]] && opts+=(-dict="$root/fuzz/$h.dict")
  # Guards against a harness that hangs without libFuzzer noticing (it checks -timeout per
  # input, but not e.g. a stuck start-up).
  timeout --kill-after=10 $((seconds + 120)) \
    "$out/bin/${h}_fuzzer" "${opts[@]}" "$work" "$root/fuzz/corpus/$h" </dev/null >"$log" 2>&1
  rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
  seeds="$(find "$root/fuzz/corpus/$h" -type f | wc -l)"
  found="$(find "$work" -type f | wc -l)"
  detail="${runs:-?} runs, cov ${cov:-?}, ${seeds} seeds + ${found} inputs in $work"
  if [[ $rc -eq 0 ]] && ! grep -q -E '^==[0-9]+==ERROR|^SUMMARY: ' "$log"; then
    passed=$((passed + 1))
    step "run ${h}_fuzzer ${seconds}s" "$t" "PASSED" "$detail"
  else
    failed=$((failed + 1))
    # The start of the report (what and where; deep recursions repeat), then its summary.
    echo "---- ${h}_fuzzer: report (full log: $log) ----"
    awk '/ERROR: |FUZZ CHECK FAILED|runtime error: |terminate called|^(INFO|ERROR): libFuzzer/ && !p {p = 1}
         p && n < 45 {print; n++}' "$log" | cut -c1-400
    grep -E '^SUMMARY: |Test unit written|^MS: ' "$log" | cut -c1-400
    echo "----"
    repro="$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)"
    [[ $rc -eq 124 || $rc -eq 137 ]] && repro="(none: killed by the overall time limit)"
    step "run ${h}_fuzzer ${seconds}s" "$t" "FAILED" \
      "exit status $rc, reproducer ${repro:-(none written)}; $detail"
  fi
done

echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

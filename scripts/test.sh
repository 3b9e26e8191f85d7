#!/usr/bin/env bash
# scripts/test.sh: install what is missing, then configure, build and test every configuration CI runs:
#   gcc      native GCC, Release                               build/gcc
#   clang    native Clang, Release                             build/clang
#   asan     Clang, RelWithDebInfo, AddressSanitizer + UBSan   build/asan
#   aarch64  cross GCC for 64-bit ARM, tests under qemu        build/aarch64
# and prints a summary table (ctest results, Catch2 totals, wall times). Exits non-zero on any failure.
#
# Usage: scripts/test.sh [--quick] [CONFIG...]
#   --quick      native GCC only (the fast check while developing)
#   CONFIG...    run only these configurations, e.g. `scripts/test.sh clang aarch64`
# Environment: CHORD_BUILD_ROOT (default <project>/build), CHORD_JOBS (default 2),
#              CHORD_TEST_TIMEOUT (seconds per test, default 600: a hung test must not eat CI's time).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_ROOT=${CHORD_BUILD_ROOT:-$CHORD_ROOT/build}
JOBS=${CHORD_JOBS:-2}
TEST_TIMEOUT=${CHORD_TEST_TIMEOUT:-600}
ALL_CONFIGS=(gcc clang asan aarch64)

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# config_args NAME: sets `args` to the CMake arguments of a configuration.
config_args() {
  case $1 in
    gcc) args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++) ;;
    clang) args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DCHORD_BUILD_FUZZ=ON) ;;  # + ctest label fuzz
    asan) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DCHORD_SANITIZE=ON) ;;
    # -O2, not -O3: aarch64 GCC 12.2 has an internal compiler error (vect_transform_reduction) when
    # it vectorizes an fmax reduction that widens float to double at -O3. Under qemu only
    # correctness is tested, and -O2 also compiles faster.
    aarch64) args=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"
                   -DCMAKE_TOOLCHAIN_FILE="$CHORD_ROOT/cmake/toolchains/aarch64-linux-gnu.cmake") ;;
  esac
}

# Sanitizer reports must fail the test, with a stack trace to act on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Results per configuration, for the summary table.
declare -A result ctest_count catch_cases catch_asserts build_time test_time total_time

# catch_totals LOG: sums the Catch2 compact-reporter totals of every test binary in a ctest log:
#   "Passed all 6 test cases with 6284 assertions." / "Passed 1 test case with 3 assertions."
# prints "<test cases> <assertions>" (passing ones only: a failing configuration is marked anyway).
catch_totals() {
  awk '
    match($0, /Passed (all |both )?[0-9]+ test cases? with [0-9]+ assertions?\./) {
      split(substr($0, RSTART, RLENGTH), w, " ")
      i = (w[2] == "all" || w[2] == "both") ? 3 : 2
      cases += w[i]; asserts += w[i + 4]
    }
    END { printf "%d %d\n", cases, asserts }' "$1"
}

run_config() {
  local name=$1 dir=$BUILD_ROOT/$1 start step log
  local -a args
  config_args "$name"
  start=$(chord_now)
  result[$name]=FAILED ctest_count[$name]=- catch_cases[$name]=- catch_asserts[$name]=-
  build_time[$name]=- test_time[$name]=-

  chord_log "[$name] configure + build in $dir"
  if ! cmake -S "$CHORD_ROOT" -B "$dir" -G Ninja "${args[@]}" ||
     ! cmake --build "$dir" -j "$JOBS"; then
    result[$name]="BUILD FAILED"
    build_time[$name]=$(chord_elapsed "$start") total_time[$name]=${build_time[$name]}
    return 1
  fi
  build_time[$name]=$(chord_elapsed "$start")

  chord_log "[$name] ctest"
  step=$(chord_now)
  log=$dir/ctest-summary.log
  local status=0
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --timeout "$TEST_TIMEOUT") 2>&1 | tee "$log" || status=$?
  test_time[$name]=$(chord_elapsed "$step")
  total_time[$name]=$(chord_elapsed "$start")

  # "100% tests passed, 0 tests failed out of 7"
  local line passed total
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    total=${BASH_REMATCH[2]} passed=$((BASH_REMATCH[2] - BASH_REMATCH[1]))
    ctest_count[$name]="$passed/$total"
  fi
  # ctest keeps every test's full output in LastTest.log, whatever the console verbosity.
  if [[ -f $dir/Testing/Temporary/LastTest.log ]]; then
    read -r catch_cases[$name] catch_asserts[$name] < <(catch_totals "$dir/Testing/Temporary/LastTest.log")
  fi
  if ((status != 0)) || [[ -z ${total:-} ]] || ((total == 0)); then
    result[$name]="TESTS FAILED"
    return 1
  fi
  result[$name]=ok
}

print_summary() {
  printf '\nSummary (%s, %s jobs)\n' "$(git -C "$CHORD_ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')" "$JOBS"
  local fmt='%-13s %-13s %-8s %-12s %-12s %9s %8s %9s\n' c
  printf "$fmt" configuration result ctest "catch2 cases" "assertions" "build s" "test s" "total s"
  printf "$fmt" ------------- ------------- -------- ------------ ------------ --------- -------- ---------
  for c in "${configs[@]}"; do
    printf "$fmt" "$c" "${result[$c]}" "${ctest_count[$c]}" "${catch_cases[$c]}" "${catch_asserts[$c]}" \
      "${build_time[$c]}" "${test_time[$c]}" "${total_time[$c]}"
  done
  printf 'wall time, all configurations: %s s\n' "$overall"
}

# Everything runs from main, called on the last line: bash has then read the whole file, so editing
# this script while it runs cannot change what it does.
main() {
  local c failed=0 overall_start overall
  configs=()
  while (($#)); do
    case $1 in
      --quick) configs=(gcc) ;;
      -h | --help) usage; return 0 ;;
      gcc | clang | asan | aarch64) configs+=("$1") ;;
      *) echo "unknown argument: $1" >&2; usage >&2; return 2 ;;
    esac
    shift
  done
  ((${#configs[@]})) || configs=("${ALL_CONFIGS[@]}")

  # Only the cross configuration needs the cross packages; the benchmark peers are checked too, so
  # that a machine set up by this script can also build the benchmarks.
  local packages=("${CHORD_BUILD_PACKAGES[@]}" "${CHORD_BENCH_PACKAGES[@]}")
  for c in "${configs[@]}"; do [[ $c == aarch64 ]] && packages+=("${CHORD_CROSS_PACKAGES[@]}"); done
  chord_ensure_packages "${packages[@]}"

  overall_start=$(chord_now)
  for c in "${configs[@]}"; do
    run_config "$c" || failed=1
  done
  overall=$(chord_elapsed "$overall_start")
  mkdir -p "$BUILD_ROOT"
  print_summary | tee "$BUILD_ROOT/test-summary.txt"
  if ((failed)); then
    echo "FAILED: $(for c in "${configs[@]}"; do [[ ${result[$c]} == ok ]] || printf '%s ' "$c"; done)" >&2
    return 1
  fi
  echo "all configurations passed"
}

main "$@"; exit $?

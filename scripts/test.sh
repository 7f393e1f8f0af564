#!/usr/bin/env bash
# Runs the whole test suite: set up (packages, Kokkos, build), then CTest.
#
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   Debug build with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/
#   scripts/test.sh --debian-kokkos   against Debian's Serial-only Kokkos package, in build-debian-kokkos/
#                                     (installed package, every header, batches and the whole model)
#   extra arguments after -- go to ctest (e.g. scripts/test.sh -- -R graph)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup_args=(--build-dir "$root/build")
ctest_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) setup_args=(--build-dir "$root/build-asan" --build-type Debug --sanitize); shift ;;
    # Against Debian's Kokkos: the packaging check, the batches and the whole model on Serial (the
    # layers' own tests already run on this backend in the main pass; this keeps CI short).
    --debian-kokkos) setup_args=(--build-dir "$root/build-debian-kokkos" --debian-kokkos --
                                 "-DEMBSR_TEST_SOURCES_REGEX=data/test_ragged_batch|model/test_embsr"); shift ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh" "${setup_args[@]}"
build_dir="${setup_args[1]}"
export OMP_PROC_BIND=false
# halt_on_error keeps sanitizer failures fatal; detect_leaks needs ptrace, which some sandboxes lack.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "${ctest_args[@]}"

#!/usr/bin/env bash
# Runs the whole test suite: set up (packages, Kokkos, build), then CTest.
#
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer (-O1 -g) in build-asan/, library tests;
#                                leaves out the tests that exercise no new code paths and only cost
#                                time there (the Python oracles' self-checks, the install check, the
#                                whole-model finite differences: the per-layer ones do run; the
#                                memorisation runs: 32 training steps, 3 minutes under ASan; the
#                                comparisons with the PyTorch oracles: their C++ paths run under the
#                                sanitizers in the models' own small tests, the Python side needs none)
#   scripts/test.sh --cuda       the CUDA build (Kokkos CUDA + nvcc_wrapper, setup.sh --cuda): with a
#                                GPU, Release in build-cuda/ of every test, example and benchmark, and
#                                the tests are run; without one, unoptimised in build-cuda-check/
#                                (compile and link only) of every example. They instantiate every
#                                registered model, hence every layer, for Kokkos::Cuda through the
#                                registry (the library's device code), and embsr-train the MPI
#                                path's device staging. The tests' and the benchmarks' own nvcc
#                                builds are left to the run that can execute them (with a GPU;
#                                scripts/gpu-check.sh is the full GPU run): compiled and not run,
#                                the tests cost more CI time than any other step, and the benchmarks
#                                (timing programs over the same registry) 1.7 minutes for no new
#                                device code.
#   scripts/test.sh --debian-kokkos   against Debian's Serial-only Kokkos package, in build-debian-kokkos/
#                                     (the installed-package check, the batches and the whole model)
#   scripts/test.sh --unity      (with any mode) the test files compiled in unity batches: faster from
#                                scratch, slower to rebuild after an edit; --sanitize and --cuda imply it
#   extra arguments after -- go to ctest (e.g. scripts/test.sh -- -R graph)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup_args=(--build-dir "$root/build")
ctest_args=()
ctest_exclude=""
cuda=0
has_gpu=0
if nvidia-smi -L >/dev/null 2>&1; then has_gpu=1; fi
# Unity build (EMBSR_UNITY_TESTS, tests/CMakeLists.txt): Kokkos/Catch2/Eigen parsed and the model's
# kernels compiled once per batch of 8 test files, not once per file. Test executable from scratch, CPU
# s: nvcc 1209 -> 510, ASan 1010 -> 536, Release 917 -> 570. The sanitizer and CUDA builds use it always.
unity=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) # The long numeric comparisons run in the main pass; under the sanitizers their code
                # paths are covered by the small cases of the same files (layers, models). The
                # files of comparisons with the PyTorch oracles are not even compiled here: each of
                # their cases is one (the models they drive run here in their own tests' cases).
                # The space-templated tests run on the default space only (tests/support/exec_spaces.hpp):
                # the same kernel bodies on Serial add no sanitizer coverage, only compile time.
                # Built without MPI (EMBSR_MPI=OFF): the library and its tests need none; the MPI runs
                # (tests/cli/mpi_training.sh, through the tools) are the main pass's.
                setup_args=(--build-dir "$root/build-asan" --build-type Sanitize --sanitize --
                            "-DEMBSR_TEST_SOURCES_EXCLUDE_REGEX=model/test_oracle[_a-z0-9]*\\.cpp|model/test_graph_oracle\\.cpp"
                            -DEMBSR_TEST_DEFAULT_SPACE_ONLY=ON -DEMBSR_MPI=OFF)
                unity=1
                ctest_exclude="oracle.selfcheck|oracle.graph_selfcheck|oracle.sequence_selfcheck|install.consumer_project|whole-model gradients match finite differences|are memorised|gradients of every ablation|gradients of the Sec. V-D variants|equals the brute-force reference|gradients match finite differences on every coordinate|memorises 64 real JD sessions"
                shift ;;
    --cuda) cuda=1; unity=1
            if [[ $has_gpu -eq 1 ]]; then setup_args=(--build-dir "$root/build-cuda" --cuda)
            else setup_args=(--build-dir "$root/build-cuda-check" --cuda --build-type CompileCheck --
                             -DEMBSR_ENABLE_TESTS=OFF -DEMBSR_ENABLE_BENCHMARKS=OFF); fi
            shift ;;
    # Against Debian's Kokkos: the packaging check, the batches and the whole model on Serial (the
    # layers' own tests already run on this backend in the main pass; this keeps CI short). Its three
    # test files never reach make_model, so the registry's instantiation unit would only add its compile.
    --debian-kokkos) setup_args=(--build-dir "$root/build-debian-kokkos" --debian-kokkos --
                                 "-DEMBSR_TEST_SOURCES_REGEX=batch/test_batch_builder|batch/test_batch_validator|model/test_embsr"
                                 -DEMBSR_ENABLE_BENCHMARKS=OFF -DEMBSR_ENABLE_EXAMPLES=OFF
                                 -DEMBSR_HEADER_CHECK=OFF -DEMBSR_TESTS_SHARE_REGISTRY=OFF); shift ;;
    --unity) unity=1; shift ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ $unity -eq 1 ]]; then
  [[ " ${setup_args[*]} " == *" -- "* ]] || setup_args+=(--)   # what follows -- goes to cmake
  setup_args+=(-DEMBSR_UNITY_TESTS=ON)
fi
"$root/scripts/setup.sh" "${setup_args[@]}"
build_dir="${setup_args[1]}"
export OMP_PROC_BIND=false
# halt_on_error keeps sanitizer failures fatal; detect_leaks needs ptrace, which some sandboxes lack.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
cd "$build_dir"
if [[ $cuda -eq 1 && $has_gpu -eq 0 ]]; then
  echo "[test] CUDA build of the examples and benchmarks complete (every registered model for Kokkos::Cuda); no GPU on this machine, so the tests were neither built nor run"
  exit 0
fi
if [[ -n "$ctest_exclude" ]]; then ctest_args=(-E "$ctest_exclude" "${ctest_args[@]}"); fi
ctest --output-on-failure -j "$(nproc)" "${ctest_args[@]}"

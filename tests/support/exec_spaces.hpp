#pragma once
// The Kokkos execution spaces enabled in this build, as a std::tuple for
// TEMPLATE_LIST_TEST_CASE. Every space-dependent test runs once per entry; Catch2 names the runs
// by index ("... - ExecutionSpaces - 0" is the first enabled space below: Serial, OpenMP, Threads, Cuda).
// A CUDA build tests Cuda only: the host backends are the CPU build's job (tests that compare
// backends use DefaultHostExecutionSpace as the reference), and every extra space would multiply
// nvcc's compile time. The sanitizer build tests the default space only (below).

#include <tuple>

#include <Kokkos_Core.hpp>

namespace embsr::test {

template <class L, class T>
struct Append;
template <class... Ts, class T>
struct Append<std::tuple<Ts...>, T> {
  using type = std::tuple<Ts..., T>;
};

using NoSpaces = std::tuple<>;
#if defined(KOKKOS_ENABLE_SERIAL) && !defined(KOKKOS_ENABLE_CUDA)
using WithSerial = Append<NoSpaces, Kokkos::Serial>::type;
#else
using WithSerial = NoSpaces;
#endif
#if defined(KOKKOS_ENABLE_OPENMP) && !defined(KOKKOS_ENABLE_CUDA)
using WithOpenMP = Append<WithSerial, Kokkos::OpenMP>::type;
#else
using WithOpenMP = WithSerial;
#endif
#if defined(KOKKOS_ENABLE_THREADS) && !defined(KOKKOS_ENABLE_CUDA)
using WithThreads = Append<WithOpenMP, Kokkos::Threads>::type;
#else
using WithThreads = WithOpenMP;
#endif
#if defined(KOKKOS_ENABLE_CUDA)
using WithCuda = Append<WithThreads, Kokkos::Cuda>::type;
#else
using WithCuda = WithThreads;
#endif

#if defined(EMBSR_TEST_DEFAULT_SPACE_ONLY)
// The sanitizer build (scripts/test.sh --sanitize, EMBSR_TEST_DEFAULT_SPACE_ONLY): one space, the
// default one. Every space runs the same kernel bodies, so a second host space adds no memory or
// undefined-behaviour coverage there, only its compile and run time; each space is tested in the
// main pass (Serial and OpenMP) and against Debian's Serial-only Kokkos.
using ExecutionSpaces = std::tuple<Kokkos::DefaultExecutionSpace>;
#else
using ExecutionSpaces = WithCuda;
#endif
static_assert(std::tuple_size<ExecutionSpaces>::value > 0, "no Kokkos execution space enabled");

}  // namespace embsr::test

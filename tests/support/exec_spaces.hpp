#pragma once
// The Kokkos execution spaces enabled in this build, as a std::tuple for
// TEMPLATE_LIST_TEST_CASE. Every space-dependent test runs once per entry; Catch2 names the runs
// by index ("... - ExecutionSpaces - 0" is the first enabled space below: Serial, OpenMP, Threads, Cuda).
// A CUDA build tests Cuda only: the host backends are the CPU build's job (tests that compare
// backends use DefaultHostExecutionSpace as the reference), and every extra space would multiply
// nvcc's compile time.

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

using ExecutionSpaces = WithCuda;
static_assert(std::tuple_size<ExecutionSpaces>::value > 0, "no Kokkos execution space enabled");

}  // namespace embsr::test

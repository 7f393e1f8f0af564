#pragma once
// Math functions usable inside kernels on every backend and every Kokkos >= 3.4: Kokkos 3.x has
// them in Kokkos::Experimental, Kokkos 4 in Kokkos (the Experimental names were removed later).

#include <Kokkos_Core.hpp>

namespace embsr::math {

#if KOKKOS_VERSION >= 30700
namespace kmath = ::Kokkos;
#else
namespace kmath = ::Kokkos::Experimental;
#endif

template <class T>
KOKKOS_INLINE_FUNCTION T sqrt(T x) { return kmath::sqrt(x); }
template <class T>
KOKKOS_INLINE_FUNCTION T exp(T x) { return kmath::exp(x); }
template <class T>
KOKKOS_INLINE_FUNCTION T log(T x) { return kmath::log(x); }
template <class T>
KOKKOS_INLINE_FUNCTION T tanh(T x) { return kmath::tanh(x); }
template <class T>
KOKKOS_INLINE_FUNCTION T abs(T x) { return x < T(0) ? -x : x; }
template <class T>
KOKKOS_INLINE_FUNCTION T max(T a, T b) { return a > b ? a : b; }
template <class T>
KOKKOS_INLINE_FUNCTION T min(T a, T b) { return a < b ? a : b; }
template <class T>
KOKKOS_INLINE_FUNCTION T sigmoid(T x) {
  // Two branches so that exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + kmath::exp(-x));
  const T e = kmath::exp(x);
  return e / (T(1) + e);
}
template <class T>
KOKKOS_INLINE_FUNCTION bool isfinite(T x) { return x == x && x - x == T(0); }

}  // namespace embsr::math

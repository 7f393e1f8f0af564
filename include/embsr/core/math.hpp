#pragma once
// Math functions usable inside kernels on every backend and every Kokkos >= 3.4: Kokkos 3.x has
// them in Kokkos::Experimental, Kokkos 4 in Kokkos (the Experimental names were removed later).

#include <cstdint>
#include <cstring>

#include <Kokkos_Core.hpp>

namespace embsr::math {

#if KOKKOS_VERSION >= 30700
namespace kmath = ::Kokkos;
#else
namespace kmath = ::Kokkos::Experimental;
#endif

// Single precision on the host: exp, sigmoid and tanh written without libm calls and without
// branches, so that the compiler vectorises the element-wise loops that call them (glibc's scalar
// expf and tanhf were most of the GRU and GGNN kernels' time). Maximum relative error about 2e-7
// (tests/core/test_math.cpp measures it); GPUs keep their native functions, double keeps libm.
// Host-only functions: the dispatching overloads below call them only in the host compilation pass.
namespace fast {

// Bit views of a float (memcpy: the portable bit cast, compiled to nothing).
inline std::int32_t bits_of(float x) {
  std::int32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
inline float float_of(std::int32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
// Every select below is on integers: with the default -ftrapping-math GCC will not if-convert a
// float comparison whose result feeds arithmetic, and the loop would stay scalar.
inline constexpr std::int32_t kSignBit = static_cast<std::int32_t>(0x80000000u);

inline float exp(float x) {
  // exp(x) = 2^n exp(r), n = round(x / ln 2), |r| <= ln(2) / 2; Cephes' expf polynomial for exp(r).
  // |x| is clamped to 88 (2^n stays finite; where exp(x) is subnormal, below about -87.3, the
  // result is 0). NaN and +-inf give NaN (x - x): a finite model never produces them, and a NaN
  // then shows up instead of being clamped into a plausible number.
  const std::int32_t b = bits_of(x), mag = b & 0x7fffffff, max_mag = 0x42b00000;  // 88.0f
  const float xc = float_of((mag < max_mag ? mag : max_mag) | (b & kSignBit));
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23)
  float r = xc - n * 0.693359375f;  // ln 2 in two parts, for an exact reduction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * float_of((static_cast<std::int32_t>(n) + 127) << 23) + (x - x);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + fast::exp(-x)); }

inline float tanh(float x) {
  // |x| < 0.625: Cephes' odd polynomial; otherwise 1 - 2 / (exp(2|x|) + 1) with x's sign.
  const std::int32_t b = bits_of(x), sign = b & kSignBit, mag = b & 0x7fffffff;
  const float a = float_of(mag);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float big = 1.0f - 2.0f / (fast::exp(2.0f * a) + 1.0f);
  // A bitwise blend rather than a select: GCC would otherwise sink the division into one branch.
  const std::int32_t use_small = -static_cast<std::int32_t>(mag < 0x3f200000);  // all ones below 0.625f
  return float_of((bits_of(small) & use_small) | ((bits_of(big) | sign) & ~use_small));
}

}  // namespace fast

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
// Single precision: the vectorisable versions above on the host, the native ones on a GPU.
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__) || defined(__SYCL_DEVICE_ONLY__)
#define EMBSR_MATH_DEVICE_PASS 1
#endif
KOKKOS_INLINE_FUNCTION float exp(float x) {
#if defined(EMBSR_MATH_DEVICE_PASS)
  return kmath::exp(x);
#else
  return fast::exp(x);
#endif
}
KOKKOS_INLINE_FUNCTION float tanh(float x) {
#if defined(EMBSR_MATH_DEVICE_PASS)
  return kmath::tanh(x);
#else
  return fast::tanh(x);
#endif
}
KOKKOS_INLINE_FUNCTION float sigmoid(float x) {
#if defined(EMBSR_MATH_DEVICE_PASS)
  if (x >= 0.0f) return 1.0f / (1.0f + kmath::exp(-x));
  const float e = kmath::exp(x);
  return e / (1.0f + e);
#else
  return fast::sigmoid(x);
#endif
}
#undef EMBSR_MATH_DEVICE_PASS

template <class T>
KOKKOS_INLINE_FUNCTION bool isfinite(T x) { return x == x && x - x == T(0); }

}  // namespace embsr::math
